from fastapi import APIRouter, Depends, HTTPException
from sqlalchemy.orm import Session

from ..db import Order, User
from ..deps import get_db

router = APIRouter(tags=["public"])


@router.post("/login")
def login(email: str, password: str, db: Session = Depends(get_db)):
    user = db.query(User).filter(User.email == email).first()
    if user is None or user.password != password:
        raise HTTPException(status_code=401, detail="bad credentials")
    return {"ok": True}


@router.get("/health")
def health():
    return {"status": "ok"}


@router.post("/orders/import")
def import_orders(payload: list[dict], db: Session = Depends(get_db)):
    for row in payload:
        db.add(Order(**row))
    db.commit()
    return {"imported": len(payload)}
