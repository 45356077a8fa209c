"""Sending a notification by e-mail over SMTP (the standard library's smtplib, in a thread)."""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from app.notify.http import DeliveryError


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    security: str  # starttls, tls or none
    user: str | None
    password: str | None
    sender: str
    timeout_seconds: float


def message(*, sender: str, to: list[str], subject: str, text: str, headers: dict[str, str]) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = ", ".join(to)
    mail["Subject"] = subject
    mail["Date"] = formatdate(localtime=False, usegmt=True)
    mail["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    for name, value in headers.items():
        mail[name] = value
    mail.set_content(text)
    return mail


def _send(server: SmtpServer, mail: EmailMessage) -> None:
    context = ssl.create_default_context()
    client: smtplib.SMTP
    if server.security == "tls":
        client = smtplib.SMTP_SSL(server.host, server.port, timeout=server.timeout_seconds, context=context)
    else:
        client = smtplib.SMTP(server.host, server.port, timeout=server.timeout_seconds)
    with client:
        if server.security == "starttls":
            client.starttls(context=context)
        if server.user:
            client.login(server.user, server.password or "")
        client.send_message(mail)


async def send(server: SmtpServer, mail: EmailMessage) -> None:
    """Hand `mail` to the SMTP server; DeliveryError (retryable unless the server refused for good)."""
    try:
        await asyncio.to_thread(_send, server, mail)
    except smtplib.SMTPAuthenticationError as exc:
        raise DeliveryError(f"the SMTP server refused the login ({exc.smtp_code})", retryable=False) from None
    except smtplib.SMTPRecipientsRefused:
        raise DeliveryError("the SMTP server refused every recipient", retryable=False) from None
    except smtplib.SMTPResponseException as exc:
        said = (
            exc.smtp_error.decode(errors="replace")
            if isinstance(exc.smtp_error, bytes)
            else str(exc.smtp_error)
        )
        raise DeliveryError(
            f"the SMTP server answered {exc.smtp_code}: {said[:200]}", retryable=exc.smtp_code < 500
        ) from None
    except (OSError, smtplib.SMTPException) as exc:
        raise DeliveryError(
            f"the SMTP server {server.host}:{server.port} failed ({type(exc).__name__}: {exc})",
            retryable=True,
        ) from None
