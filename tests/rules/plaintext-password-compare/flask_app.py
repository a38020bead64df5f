from flask import Flask, request
from flask_sqlalchemy import SQLAlchemy
from werkzeug.security import check_password_hash

app = Flask(__name__)
db = SQLAlchemy(app)


class User(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    username = db.Column(db.String)
    password = db.Column(db.String)


@app.route("/login", methods=["POST"])
def login():
    data = request.get_json()
    user = User.query.filter_by(username=data.get("username")).first()
    # ruleid: plaintext-password-compare
    if user and data.get("password") == user.password:
        return "ok"
    return "no", 401


@app.route("/login2", methods=["POST"])
def login_hashed():
    data = request.get_json()
    user = User.query.filter_by(username=data.get("username")).first()
    # ok: plaintext-password-compare
    if user and check_password_hash(user.password, data.get("password")):
        return "ok"
    return "no", 401
