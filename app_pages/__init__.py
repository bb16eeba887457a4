"""The Streamlit app's pages (one file each, run by ``st.navigation`` in app.py) and their helpers:
``data`` (the one data module), ``filters`` (the shared sidebar), ``kpis`` (pure helpers, no
Streamlit) and ``charts`` (Altair builders)."""
