"""Real local servers for the notification channels' tests, each speaking its service's
documented format and checking what it is sent with an implementation of its own (not the
platform's code): an SMTP server (aiosmtpd), an Alibaba Cloud SMS gateway (``SendSms``,
signature version 1.0), a DingTalk custom robot (加签) and a WeCom group robot. Each can be told
to answer with an error, a failing status or not in time."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from command.embedded import free_port

# --- HTTP ---------------------------------------------------------------------------------------


@dataclass
class Answer:
    status: int = 200
    body: Any = field(default_factory=dict)  # a dict is sent as JSON, bytes as they are
    delay: float = 0.0


class JsonApi:
    """An HTTP server whose ``answer(path, query, headers, body) -> Answer`` is the service."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.closing = threading.Event()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
                answer = api.answer(parts.path, query, dict(self.headers), body)
                api.requests.append(
                    {
                        "path": parts.path,
                        "query": query,
                        "headers": dict(self.headers),
                        "body": body,
                        "answer": answer,
                    }
                )
                if answer.delay and api.closing.wait(answer.delay):
                    return
                data = (
                    answer.body
                    if isinstance(answer.body, bytes)
                    else json.dumps(answer.body, ensure_ascii=False).encode()
                )
                try:
                    self.send_response(answer.status)
                    self.send_header("Content-Type", "application/json;charset=utf-8")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the client gave up waiting: what a slow answer is for

            def log_message(self, *args: object) -> None:
                return

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            block_on_close = False

            def handle_error(self, request: Any, client_address: Any) -> None:
                return

        self.server = Server(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_port}"
        # A short poll: shutdown() waits for the loop to notice.
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def answer(self, path: str, query: dict[str, str], headers: dict, body: bytes) -> Answer:
        raise NotImplementedError

    def close(self) -> None:
        self.closing.set()
        self.server.shutdown()
        self.server.server_close()


# --- Alibaba Cloud SMS --------------------------------------------------------------------------

UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")
ENCODED_TOKEN = re.compile(r"^(?:[A-Za-z0-9\-_.~]|%[0-9A-F]{2})*$")


def pct(text: str) -> str:
    """The documented percentEncode, byte by byte: unreserved characters stay, every other
    byte of the UTF-8 is %XY with upper-case hex."""
    return "".join(chr(b) if b in UNRESERVED else f"%{b:02X}" for b in text.encode("utf-8"))


def unpct(token: str) -> str:
    data = bytearray()
    i = 0
    while i < len(token):
        if token[i] == "%":
            data.append(int(token[i + 1 : i + 3], 16))
            i += 3
        else:
            data.append(ord(token[i]))
            i += 1
    return data.decode("utf-8")


def aliyun_expected_signature(secret: str, method: str, params: dict[str, str]) -> str:
    canonical = "&".join(f"{pct(k)}={pct(params[k])}" for k in sorted(params) if k != "Signature")
    to_sign = method + "&" + pct("/") + "&" + pct(canonical)
    mac = hmac.new(f"{secret}&".encode(), to_sign.encode(), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode()


class AliyunSmsGateway(JsonApi):
    """``SendSms`` as dysmsapi answers it. ``mode``: ok, limit (isv.BUSINESS_LIMIT_CONTROL),
    illegal (isv.MOBILE_NUMBER_ILLEGAL), unavailable (HTTP 503), slow (answers after 5 s).
    A request whose signature, nonce, timestamp or fixed parameters are wrong is refused as
    the service does (HTTP 400 with its error code); ``problems`` lists why."""

    KEY_ID = "LTAI-test-key-id"
    SECRET = "test-secret/with+odd=chars&"

    def __init__(self, mode: str = "ok") -> None:
        self.mode = mode
        self.nonces: set[str] = set()
        self.problems: list[str] = []
        self.sent: list[dict[str, str]] = []
        super().__init__()
        self.url = f"{self.base}/"

    def parse(self, body: bytes) -> dict[str, str] | None:
        params: dict[str, str] = {}
        for token in body.decode("ascii").split("&"):
            name, _, value = token.partition("=")
            if not (ENCODED_TOKEN.match(name) and ENCODED_TOKEN.match(value)):
                self.problems.append(f"not percent-encoded as documented: {token[:60]}")
                return None
            params[unpct(name)] = unpct(value)
        return params

    def check(self, headers: dict, params: dict[str, str]) -> str | None:
        """The error code the service would answer, or None when the request is good."""
        if not headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
            return "InvalidParameter"
        fixed = {
            "Action": "SendSms",
            "Format": "JSON",
            "SignatureMethod": "HMAC-SHA1",
            "SignatureVersion": "1.0",
            "Version": "2017-05-25",
        }
        for name, value in fixed.items():
            if params.get(name) != value:
                self.problems.append(f"{name}={params.get(name)!r}")
                return "InvalidParameter"
        if params.get("AccessKeyId") != self.KEY_ID:
            return "InvalidAccessKeyId.NotFound"
        try:
            stamp = datetime.strptime(params.get("Timestamp", ""), "%Y-%m-%dT%H:%M:%SZ")
        except ValueError:
            return "InvalidTimeStamp.Format"
        if abs(datetime.now(UTC) - stamp.replace(tzinfo=UTC)) > timedelta(minutes=15):
            return "InvalidTimeStamp.Expired"
        nonce = params.get("SignatureNonce", "")
        if not nonce or nonce in self.nonces:
            return "SignatureNonceUsed"
        self.nonces.add(nonce)
        expected = aliyun_expected_signature(self.SECRET, "POST", params)
        if not hmac.compare_digest(expected, params.get("Signature", "")):
            self.problems.append("signature does not match")
            return "SignatureDoesNotMatch"
        for name in ("PhoneNumbers", "SignName", "TemplateCode", "TemplateParam", "RegionId"):
            if not params.get(name):
                return "isv.INVALID_PARAMETERS"
        try:
            variables = json.loads(params["TemplateParam"])
        except ValueError:
            return "isv.INVALID_JSON_PARAM"
        if set(variables) != {"title", "link"}:
            self.problems.append(f"template variables {sorted(variables)}")
            return "isv.TEMPLATE_MISSING_PARAMETERS"
        return None

    def answer(self, path: str, query: dict[str, str], headers: dict, body: bytes) -> Answer:
        params = self.parse(body)
        if params is None:
            return Answer(400, {"Code": "InvalidParameter", "Message": "bad encoding"})
        error = self.check(headers, params)
        request_id = f"req-{len(self.requests)}"
        if error:
            return Answer(400, {"Code": error, "Message": "hunter2 internal", "RequestId": "x"})
        self.sent.append(params)
        if self.mode == "limit":
            body_ = {"Code": "isv.BUSINESS_LIMIT_CONTROL", "Message": "触发分钟级流控Permits:1"}
            return Answer(200, {**body_, "RequestId": request_id})
        if self.mode == "illegal":
            return Answer(200, {"Code": "isv.MOBILE_NUMBER_ILLEGAL", "Message": "非法手机号"})
        if self.mode == "unavailable":
            return Answer(503, b"<html>upstream db=10.0.0.5 down</html>")
        answer = Answer(
            200,
            {
                "Code": "OK",
                "Message": "OK",
                "BizId": "900619746936498440^0",
                "RequestId": request_id,
            },
        )
        if self.mode == "slow":
            answer.delay = 5.0
        return answer


# --- work group robots --------------------------------------------------------------------------


class DingTalkRobot(JsonApi):
    """A DingTalk custom robot at /robot/send?access_token=…: with a ``secret`` it checks 加签
    (timestamp within an hour, sign = Base64 HMAC-SHA256 of "timestamp\\nsecret"), and the
    body's format; errcode 310000 when the check fails. ``status`` other than 200 is answered
    as it is."""

    TOKEN = "test-access-token"

    def __init__(self, secret: str = "", status: int = 200) -> None:
        self.secret = secret
        self.status = status
        self.problems: list[str] = []
        super().__init__()
        self.url = f"{self.base}/robot/send?access_token={self.TOKEN}"

    def answer(self, path: str, query: dict[str, str], headers: dict, body: bytes) -> Answer:
        if self.status != 200:
            return Answer(self.status, b"busy")
        if path != "/robot/send" or query.get("access_token") != self.TOKEN:
            return Answer(200, {"errcode": 300001, "errmsg": "token is not exist"})
        if self.secret:
            stamp = query.get("timestamp", "")
            mac = hmac.new(self.secret.encode(), f"{stamp}\n{self.secret}".encode(), hashlib.sha256)
            expected = base64.b64encode(mac.digest()).decode()
            fresh = stamp.isdigit() and abs(time.time() * 1000 - int(stamp)) < 3600_000
            if not fresh or not hmac.compare_digest(expected, query.get("sign", "")):
                self.problems.append("sign not match")
                return Answer(200, {"errcode": 310000, "errmsg": "sign not match, more: hunter2"})
        elif "sign" in query or "timestamp" in query:
            self.problems.append("signed without a secret")
        message = json.loads(body)
        phones = message.get("at", {}).get("atMobiles", [])
        markdown = message.get("markdown", {})
        if (
            message.get("msgtype") != "markdown"
            or not markdown.get("title")
            or not phones
            or message["at"].get("isAtAll") is not False
            or any(f"@{phone}" not in markdown.get("text", "") for phone in phones)
        ):
            self.problems.append(f"message not as documented: {message}")
            return Answer(200, {"errcode": 40035, "errmsg": "缺少参数 json"})
        return Answer(200, {"errcode": 0, "errmsg": "ok"})


class WeComRobot(JsonApi):
    """A WeCom group robot at /cgi-bin/webhook/send?key=…: checks the text message's format
    (content ≤ 2048 bytes, mentioned_mobile_list); errcode 93000 for a wrong key."""

    KEY = "693a91f6-test-key"

    def __init__(self) -> None:
        self.problems: list[str] = []
        super().__init__()
        self.url = f"{self.base}/cgi-bin/webhook/send?key={self.KEY}"

    def answer(self, path: str, query: dict[str, str], headers: dict, body: bytes) -> Answer:
        if path != "/cgi-bin/webhook/send" or query.get("key") != self.KEY:
            return Answer(200, {"errcode": 93000, "errmsg": "invalid webhook url, hint: x"})
        message = json.loads(body)
        text = message.get("text", {})
        if (
            message.get("msgtype") != "text"
            or not text.get("content")
            or len(text["content"].encode()) > 2048
            or not text.get("mentioned_mobile_list")
        ):
            self.problems.append(f"message not as documented: {message}")
            return Answer(200, {"errcode": 40008, "errmsg": "invalid message type"})
        return Answer(200, {"errcode": 0, "errmsg": "ok"})


# --- SMTP ---------------------------------------------------------------------------------------


class SmtpHandler:
    """aiosmtpd handler. ``mode``: ok; refuse (550 on RCPT); busy (451 on DATA); slow (no
    answer to DATA for 5 s)."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.messages: list[tuple[str, list[str], EmailMessage]] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.mode == "refuse":
            return "550 5.1.1 <hunter2> no such user here (internal relay 10.0.0.5)"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.mode == "busy":
            return "451 4.3.0 queue db=10.0.0.5 hunter2 full"
        if self.mode == "slow":
            await asyncio.sleep(5)
        message = message_from_bytes(envelope.content, policy=policy.default)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"


@contextmanager
def smtp_server() -> Iterator[tuple[SmtpHandler, int]]:
    from aiosmtpd.controller import Controller

    handler = SmtpHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()
