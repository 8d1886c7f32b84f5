"""Assessment: metrics, closed-loop evaluation against the integrators, reports."""
