from flask import Flask, jsonify
from flask_sqlalchemy import SQLAlchemy

app = Flask(__name__)
db = SQLAlchemy(app)


class User(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    password = db.Column(db.String)


# ruleid: missing-authn
@app.route("/admin/users")
def admin_users():
    return jsonify([u.id for u in User.query.all()])


# ok: missing-authn
@app.route("/about")
def about():
    return jsonify({"name": "demo"})
