"""Shared hypothesis strategies (keep each one small; add, do not rewrite)."""

from __future__ import annotations

from collections.abc import Hashable

from hypothesis import strategies as st

from asyncotp import Backoff, Restart, Strategy

# -- supervision ----------------------------------------------------------------

restarts = st.sampled_from(Restart)
"""Any restart type."""

supervisor_strategies = st.sampled_from(Strategy)
"""Any supervisor strategy."""

child_ids: st.SearchStrategy[Hashable] = st.one_of(
    st.text(min_size=1, max_size=6), st.integers(-5, 50), st.tuples(st.text(max_size=3))
)
"""Hashable, non-None child ids of the kinds users write."""

_seconds = st.floats(min_value=0.0, max_value=100.0, allow_nan=False)


@st.composite
def backoffs(draw: st.DrawFn) -> Backoff:
    """A valid ``Backoff`` (``max >= initial``, ``multiplier >= 1``, jitter in [0, 1])."""
    initial = draw(_seconds)
    return Backoff(
        initial=initial,
        max=draw(st.floats(min_value=initial, max_value=1000.0, allow_nan=False)),
        multiplier=draw(st.floats(min_value=1.0, max_value=10.0, allow_nan=False)),
        jitter=draw(st.floats(min_value=0.0, max_value=1.0, allow_nan=False)),
        reset_after=draw(_seconds),
    )


# -- state machines -------------------------------------------------------------

statem_states = st.integers(min_value=0, max_value=2)
"""The states of the scripted state machine of the postpone property."""

statem_steps = st.lists(
    st.one_of(
        # ("work", states): handled in those states, postponed in the others.
        st.tuples(st.just("work"), st.frozensets(statem_states)),
        # ("goto", state, inserted): go to ``state`` (maybe the current one, which
        # is not a state change), inserting work events with NextEvent.
        st.tuples(
            st.just("goto"), statem_states, st.lists(st.frozensets(statem_states), max_size=2)
        ),
    ),
    max_size=25,
)
"""Random sequences of events and state changes for a state machine."""
