"""Dispatch: delivery jobs, who is offered each one and in which order, and moving a job to its end."""
