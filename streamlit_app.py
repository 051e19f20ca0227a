"""Entry point: the router (who is signed in, which screens they get) and the HTTP routes.

Streamlit runs this file as __main__ for every session; `streamlit run` also finds the
`app = st.App(...)` below and serves its routes (the website's intake API) on the same port.
"""

from pathlib import Path

import streamlit as st

from crm import access
from ui import auth, context

ROOT = Path(__file__).parent


def navigation() -> None:
    """Build the navigation from the signed-in actor's permissions and run the page."""
    # A local favicon: a ":material/..." icon makes every browser fetch it from Google (a third party).
    st.set_page_config(page_title="Clinic CRM", page_icon=str(ROOT / "ui" / "favicon.png"), layout="wide")
    context.engine()
    actor = auth.current_actor()
    auth.pending_redirect()
    public = st.Page(access.PUBLIC_FORM_PAGE, title="Request a free consultation", icon=":material/edit_note:")
    if actor is None:
        if auth.setup_needed():
            # A new installation: nothing but the first administrator's account until it exists.
            setup = st.Page(access.LOGIN_PAGE, title="Create the first administrator", icon=":material/login:")
            st.navigation([setup], position="hidden").run()
            return
        login = st.Page(access.LOGIN_PAGE, title="Staff sign-in", icon=":material/login:")
        page = st.navigation([public, login], position="hidden")
        if auth.has_notice() and page.title == public.title:
            st.switch_page(login)  # just signed out (idle, disabled): sign-in says why
        page.run()
        return
    auth.account_box(actor)
    auth.idle_watch()
    perms = access.permissions(actor)
    allowed = [row for row in access.STAFF_PAGES if row[3] in perms]
    pages = [
        st.Page(path, title=title, icon=icon, default=(i == 0))
        for i, (path, title, icon, _perm) in enumerate(allowed)
    ]
    st.navigation({"Workspace": pages, "Public": [public]}).run()


if __name__ == "__main__":
    navigation()
else:
    from streamlit.runtime.pages_manager import PagesManager

    from crm.http import middleware, routes
    from crm.settings import get_settings

    # Streamlit treats an app with a pages/ folder as an old-style multipage app until the
    # router has called st.navigation once: on a fresh server the first visitor to open
    # /admin_users directly would run that page without the router. Say up front that it is not.
    PagesManager.uses_pages_directory = False
    get_settings()  # a bad environment variable stops the server at start, naming it
    app = st.App(__file__, routes=routes(), middleware=middleware())
