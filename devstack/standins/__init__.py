"""Local stand-ins for the third-party services GAS uses: development only.

`python -m devstack.standins` serves them on GAS_STANDINS_URL (a Flask app from `app.py`, one
blueprint per stand-in). The web app reaches them through configuration alone (the base URLs
GAS_GLOBUS_AUTH_URL and GAS_STRIPE_API_BASE), so its code path is the production one.
"""
