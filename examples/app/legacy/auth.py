from functools import wraps

from flask import abort, request, session


def login_required(view):
    @wraps(view)
    def wrapper(*args, **kwargs):
        if "user_id" not in session:
            abort(401)
        return view(*args, **kwargs)

    return wrapper


def check_session():
    if request.endpoint != "reports.public_summary" and "user_id" not in session:
        abort(401)
