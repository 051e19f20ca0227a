"""End-to-end tests: a real `streamlit run` server driven by headless Chromium."""
