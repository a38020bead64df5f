from flask import Flask, abort, request
from flask_login import current_user
from flask_sqlalchemy import SQLAlchemy

app = Flask(__name__)
db = SQLAlchemy(app)


class Post(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    body = db.Column(db.String)


# ruleid: missing-authn-write
@app.route("/posts", methods=["POST"])
def create_post():
    db.session.add(Post(body=request.json["body"]))
    db.session.commit()
    return "", 201


# ok: missing-authn-write
@app.route("/posts/safe", methods=["POST"])
def create_post_safe():
    if not current_user.is_authenticated:
        abort(401)
    db.session.add(Post(body=request.json["body"]))
    db.session.commit()
    return "", 201


# ok: missing-authn-write
@app.route("/register", methods=["POST"])
def register():
    db.session.add(Post(body=request.json["name"]))
    db.session.commit()
    return "", 201
