"""madoguchi: buyer complaints in a seller's mailbox become draft replies."""

__version__ = "0.1.0"
