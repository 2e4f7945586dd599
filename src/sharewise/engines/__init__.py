"""Engine infrastructure shared by the components that run SQL on an engine (the share pipeline and linkage).

Components do not import one another, so what two of them need from one engine (how a local Spark session is
started, and the error when it cannot be) lives here, below them: it imports only the domain.
"""
