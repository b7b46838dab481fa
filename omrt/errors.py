"""The one exception type of omrt: every failure carries an aclError code and a readable message.

The `acl` facade turns it into a return code; the CLI turns it into one line and a non-zero exit.
"""
from __future__ import annotations


class OmrtError(Exception):
    """A failure with the ACL error code a pyACL caller would see."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = int(code)
        self.message = message

    def __str__(self) -> str:
        return f"{self.message} (error {self.code})"


class UnsupportedOpError(OmrtError):
    """One or more ops have no kernel; the message lists every one of them."""
