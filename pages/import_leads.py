"""Staff page: "Import leads" from a CSV file. Logic lives in crm.importer."""

from __future__ import annotations

import streamlit as st

from crm import importer
from crm.access import Perm, can
from crm.errors import CRMError
from ui import context

REPORT = "il_report"


def _download_rejected() -> None:
    """Download callback: the rejected rows hold people's details, so the download is audited."""
    report = st.session_state.get(REPORT) or {}
    with context.session() as session:
        importer.record_rejected_download(
            session=session,
            actor=context.actor(),  # type: ignore[arg-type]  # require() refuses None
            rows=len(report.get("rejected", [])),
        )


st.title("Import leads")
actor = context.actor()
if not can(actor, Perm.IMPORT):
    st.error("Your role can't import leads.")
    st.stop()

st.caption(
    "Upload a CSV file (UTF-8) with a header row. Recognized columns: first/last or full "
    "name, email, phone, ZIP, service, source, created date, notes. Every row is checked "
    "with the same rules as the website form; someone already in the CRM is matched by "
    "email or phone instead of being added twice."
)
# A new uploader key after each import empties it, so one click can't import a file twice.
upload_round = st.session_state.setdefault("il_round", 0)
upload = st.file_uploader("CSV file", type=["csv"], key=f"il_file_{upload_round}")
if upload is not None:
    data = upload.getvalue()
    try:
        preview = importer.preview_csv(data=data, timezone=context.clinic().timezone)
    except CRMError as err:
        st.error(str(err))
        preview = None
    if preview is not None:
        left, middle, right = st.columns(3)
        left.metric("Rows", preview.rows)
        middle.metric("Ready to import", preview.valid)
        right.metric("Will be rejected", preview.invalid)
        st.dataframe(
            [
                {"Field": name, "Column in your file": header}
                for name, header in preview.columns.items()
            ],
            hide_index=True,
        )
        if st.button(
            f"Import {preview.valid} rows",
            type="primary",
            key="il_import",
            disabled=not preview.valid,
        ):
            try:
                with context.session() as session:
                    report = importer.import_csv(
                        session=session, data=data, actor_id=None, actor=actor
                    )
            except CRMError as err:
                st.error(str(err))
            else:
                st.session_state[REPORT] = {
                    "summary": report.summary(),
                    "rejected": [
                        {"Row": n, "Problems": "; ".join(e.values())} for n, e in report.rejected
                    ],
                    "csv": importer.rejected_csv(report) if report.rejected else b"",
                    "name": upload.name.rsplit(".", 1)[0] + ".rejected.csv",
                }
                st.session_state["il_round"] = upload_round + 1
                st.rerun()

report = st.session_state.get(REPORT)
if report:
    st.success(report["summary"], icon=":material/check_circle:")
    if report["rejected"]:
        st.dataframe(report["rejected"], hide_index=True)
        st.download_button(
            "Download rejected rows (CSV)",
            data=report["csv"],
            file_name=report["name"],
            mime="text/csv",
            key="il_download",
            on_click=_download_rejected,
        )
