"""roomkeeper: a self-hosted room server for real-time audio and video."""

__version__ = "0.1.0"
