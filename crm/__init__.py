"""The clinic CRM's domain: no Streamlit imports anywhere in this package."""
