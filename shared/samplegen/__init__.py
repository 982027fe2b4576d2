"""Internals of the sample SOT generator; the public interface is `shared.sample`."""
