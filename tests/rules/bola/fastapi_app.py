from fastapi import Depends, FastAPI, HTTPException
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy import Column, ForeignKey, Integer
from sqlalchemy.orm import Session, declarative_base

app = FastAPI()
Base = declarative_base()
oauth2 = OAuth2PasswordBearer(tokenUrl="token")


class Order(Base):
    __tablename__ = "orders"
    id = Column(Integer, primary_key=True)
    user_id = Column(Integer, ForeignKey("users.id"))


def get_db():
    yield Session()


def get_current_user(token: str = Depends(oauth2)):
    if not token:
        raise HTTPException(status_code=401)
    return token


@app.get("/orders/{order_id}")
def read_order(order_id: int, user=Depends(get_current_user), db: Session = Depends(get_db)):
    # ruleid: bola
    return db.query(Order).filter(Order.id == order_id).first()


@app.get("/mine/{order_id}")
def read_my_order(order_id: int, user=Depends(get_current_user), db: Session = Depends(get_db)):
    # ok: bola
    return db.query(Order).filter(Order.id == order_id, Order.user_id == user.id).first()


@app.delete("/orders/{order_id}")
def delete_order(order_id: int, user=Depends(get_current_user), db: Session = Depends(get_db)):
    # ok: bola
    order = db.get(Order, order_id)
    if order.user_id != user.id:
        raise HTTPException(status_code=404)
    db.delete(order)
    db.commit()
