"""The user store: one item per user in the users table, one module per concern.

- `model`: the `User` (and `Plan`, `Login`, `ApiToken`) and how an item reads back;
- `profiles`: created at the first login, name and institution editable;
- `logins`: the login records that keep session cookies alive;
- `tokens`: personal API tokens, stored as hashes;
- `plans`: the plan as Stripe events change it, each event applied once;
- `ratelimit`: per-user one-minute windows.
`UserStore` is all of them over one table.
"""

from __future__ import annotations

from gas.users.logins import Logins
from gas.users.model import ApiToken, Login, Plan, User
from gas.users.plans import CUSTOMER_INDEX, PlanLedger
from gas.users.profiles import Profiles
from gas.users.ratelimit import RateLimits
from gas.users.tokens import TOKEN_PREFIX, ApiTokens

__all__ = [
    "CUSTOMER_INDEX",
    "TOKEN_PREFIX",
    "ApiToken",
    "Login",
    "Plan",
    "User",
    "UserStore",
]


class UserStore(Profiles, Logins, ApiTokens, PlanLedger, RateLimits):
    """Every concern of the users table in one store: `UserStore(settings)`."""
