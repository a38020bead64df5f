import logging

from fastapi import Depends, FastAPI, HTTPException
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.orm import Session

app = FastAPI()
oauth2 = OAuth2PasswordBearer(tokenUrl="token")
audit = logging.getLogger("app.audit")


def get_db():
    yield Session()


def get_current_user(token: str = Depends(oauth2)):
    if not token:
        raise HTTPException(status_code=401)
    return token


@app.post("/projects")
def create_project(name: str, user=Depends(get_current_user), db: Session = Depends(get_db)):
    # ruleid: db-write-no-audit
    db.add(name)
    db.commit()


@app.delete("/projects/{project_id}")
def delete_project(project_id: int, user=Depends(get_current_user), db: Session = Depends(get_db)):
    # ok: db-write-no-audit
    db.delete(project_id)
    db.commit()
    audit.info("project.delete", extra={"actor": user, "project": project_id})
