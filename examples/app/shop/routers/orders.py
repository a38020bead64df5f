import logging

from fastapi import APIRouter, Depends, HTTPException
from sqlalchemy.orm import Session

from ..db import Order, User
from ..deps import get_current_user, get_db

router = APIRouter(prefix="/orders", tags=["orders"])
audit = logging.getLogger("audit")


@router.get("/{order_id}")
def read_order(order_id: int, db: Session = Depends(get_db)):
    order = db.get(Order, order_id)
    if order is None:
        raise HTTPException(status_code=404)
    return order


@router.get("/mine/{order_id}")
def read_my_order(order_id: int, user: User = Depends(get_current_user), db: Session = Depends(get_db)):
    order = db.query(Order).filter(Order.id == order_id, Order.owner_id == user.id).first()
    if order is None:
        raise HTTPException(status_code=404)
    return order


@router.delete("/{order_id}")
def delete_order(order_id: int, user: User = Depends(get_current_user), db: Session = Depends(get_db)):
    order = db.get(Order, order_id)
    if order is None or order.owner_id != user.id:
        raise HTTPException(status_code=404)
    db.delete(order)
    db.commit()
    audit.info("order deleted", extra={"order_id": order_id, "actor": user.id})
    return {"deleted": order_id}
