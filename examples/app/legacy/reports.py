from flask import Blueprint, jsonify

from .auth import check_session, login_required

reports = Blueprint("reports", __name__)
reports.before_request(check_session)


@reports.get("/summary")
def public_summary():
    return jsonify({"reports": 3})


@reports.get("/<int:report_id>")
@login_required
def get_report(report_id):
    return jsonify({"id": report_id})


@login_required
@reports.route("/export", methods=["POST"])
def export_reports():
    return jsonify({"queued": True})
