"""``allows_everywhere`` is a shortcut the access step takes for every workspace name: it must never allow what
``decide`` would refuse for some name."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from app.core import policy

ACTIONS = [policy.READ, policy.READ_OUTPUTS, policy.WRITE, policy.LOCK, policy.DELETE]
PATTERNS = st.sampled_from(["*", "**", "prod-*", "app", "a*", "*-eu", "unit.*", "unit.read", ""])
rules = st.builds(
    policy.Rule,
    actions=st.lists(st.sampled_from([*ACTIONS, "*", "unit.*", "unit.re*"]), min_size=1, max_size=3).map(tuple),
    resources=st.lists(PATTERNS, min_size=1, max_size=3).map(tuple),
    effect=st.sampled_from(["allow", "deny"]),
)
grants = st.lists(
    st.builds(policy.Grant, role=st.just("r"), permission=st.just("p"), rules=st.lists(rules, max_size=4).map(tuple)),
    max_size=3,
)
names = st.lists(st.sampled_from(["prod-eu", "app", "a1", "dev-eu", "x", "prod-us"]), min_size=1, max_size=6)


@given(grants=grants, action=st.sampled_from(ACTIONS), workspace_names=names)
def test_allowed_everywhere_means_allowed_on_each_name(
    grants: list[policy.Grant], action: str, workspace_names: list[str]
) -> None:
    if policy.allows_everywhere(grants, action):
        for name in workspace_names:
            assert policy.decide(grants, action, name).allowed, (action, name)
