"""The AI assessment a worker writes for each handoff, and the reconciler that
re-enqueues assessments a lost job left pending."""
