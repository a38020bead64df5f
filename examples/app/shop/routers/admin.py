from fastapi import APIRouter, Depends
from sqlalchemy.orm import Session

from ..db import User
from ..deps import get_db, require_admin

router = APIRouter(tags=["admin"])


@router.get("/users", dependencies=[Depends(require_admin)])
def list_users(db: Session = Depends(get_db)):
    return db.query(User).all()


@router.post("/users/{user_id}/promote")
def promote_user(user_id: int, db: Session = Depends(get_db)):
    user = db.get(User, user_id)
    user.is_admin = True
    db.commit()
    return {"promoted": user_id}
