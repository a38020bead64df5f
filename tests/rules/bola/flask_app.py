from flask import Flask, abort, g
from flask_sqlalchemy import SQLAlchemy

app = Flask(__name__)
db = SQLAlchemy(app)


class Note(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    owner_id = db.Column(db.Integer)


def load_note(note_id):
    return Note.query.get(note_id)


@app.route("/notes/<int:note_id>")
def show_note(note_id):
    if g.user is None:
        abort(401)
    # ruleid: bola
    note = load_note(note_id)
    return {"id": note.id}


@app.route("/notes/<int:note_id>/safe")
def show_note_safe(note_id):
    if g.user is None:
        abort(401)
    # ok: bola
    note = Note.query.filter_by(id=note_id, owner_id=g.user.id).first_or_404()
    return {"id": note.id}
