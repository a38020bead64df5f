from fastapi import Depends, FastAPI, HTTPException
from fastapi.security import OAuth2PasswordBearer
from pydantic import BaseModel
from sqlalchemy import Column, Integer, String
from sqlalchemy.orm import Session, declarative_base

app = FastAPI()
Base = declarative_base()
oauth2 = OAuth2PasswordBearer(tokenUrl="token")


class MenuItem(Base):
    __tablename__ = "menu"
    id = Column(Integer, primary_key=True)
    name = Column(String)


class User(Base):
    __tablename__ = "users"
    id = Column(Integer, primary_key=True)
    role = Column(String)


class RoleUpdate(BaseModel):
    username: str
    role: str


def get_db():
    yield Session()


def get_current_user(token: str = Depends(oauth2)):
    if not token:
        raise HTTPException(status_code=401)
    return token


def require_staff(user=Depends(get_current_user)):
    if user.role != "staff":
        raise HTTPException(status_code=403)
    return user


@app.put("/menu/{item_id}")
def update_item(item_id: int, staff=Depends(require_staff), db: Session = Depends(get_db)):
    item = db.get(MenuItem, item_id)
    db.add(item)
    db.commit()


# ruleid: bfla
@app.delete("/menu/{item_id}")
def delete_item(item_id: int, user=Depends(get_current_user), db: Session = Depends(get_db)):
    item = db.get(MenuItem, item_id)
    db.delete(item)
    db.commit()


# ok: bfla
@app.delete("/staff/menu/{item_id}")
def delete_item_staff(item_id: int, staff=Depends(require_staff), db: Session = Depends(get_db)):
    item = db.get(MenuItem, item_id)
    db.delete(item)
    db.commit()


# ruleid: bfla
@app.get("/admin/report")
def admin_report(user=Depends(get_current_user)):
    return {"ok": True}


# ruleid: bfla
@app.put("/users/role")
def set_role(body: RoleUpdate, user=Depends(get_current_user), db: Session = Depends(get_db)):
    if body.role == "superadmin":
        raise HTTPException(status_code=403)
    target = db.query(User).filter(User.id == body.username).first()
    target.role = body.role
    db.commit()
