"""A small SMSC that speaks real SMPP 3.4 to Kannel's bearerbox, for the tests of the Kannel route.

It answers binds and enquire_link, takes submit_sm (reassembling concatenated parts by their UDH), sends a delivery
receipt as a deliver_sm for every message that asks for one, and sends mobile-originated messages on demand. It
records what arrived, so a test can count every copy of every message.
"""

from __future__ import annotations

import contextlib
import itertools
import socket
import socketserver
import struct
import threading
import time
from dataclasses import dataclass, field

HEADER = struct.Struct(">IIII")
GENERIC_NACK = 0x80000000
BIND_RECEIVER, BIND_TRANSMITTER, BIND_TRANSCEIVER = 0x01, 0x02, 0x09
SUBMIT_SM, DELIVER_SM, UNBIND, ENQUIRE_LINK = 0x04, 0x05, 0x06, 0x15
RESPONSE = 0x80000000
ESM_UDHI = 0x40
ESM_DELIVERY_RECEIPT = 0x04
DATA_CODING_UCS2 = 0x08
REGISTERED_DELIVERY = 0x01
TLV_MESSAGE_PAYLOAD = 0x0424
# UDH information elements of a concatenated message: 8-bit and 16-bit reference numbers.
IEI_CONCAT_8, IEI_CONCAT_16 = 0x00, 0x08
# Seconds between taking a message and reporting its delivery.
RECEIPT_DELAY_SECONDS = 0.2


@dataclass
class Submitted:
    """One submit_sm as it arrived (one part of a long message is one of these)."""

    smsc_id: str
    destination: str
    source: str
    data_coding: int
    payload: bytes  # the short message without its UDH
    concat: tuple[int, int, int] | None  # (reference, total, sequence) of a part


@dataclass
class SmscState:
    submitted: list[Submitted] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    sessions: list[socket.socket] = field(default_factory=list)

    def messages(self) -> list[tuple[str, str, int]]:
        """Every whole message that arrived: (destination, text, data_coding), parts put back together."""
        with self.lock:
            submitted = list(self.submitted)
        whole, parts = [], {}
        for item in submitted:
            if item.concat is None:
                whole.append((item.destination, _decode(item.payload, item.data_coding), item.data_coding))
                continue
            reference, total, sequence = item.concat
            group = parts.setdefault((item.destination, reference), {})
            group[sequence] = item
            if len(group) == total:
                payload = b"".join(group[index].payload for index in sorted(group))
                whole.append((item.destination, _decode(payload, item.data_coding), item.data_coding))
        return whole


def _decode(payload: bytes, data_coding: int) -> str:
    return payload.decode("utf-16-be") if data_coding == DATA_CODING_UCS2 else payload.decode("latin-1")


def _cstring(body: bytes, offset: int) -> tuple[str, int]:
    end = body.index(b"\x00", offset)
    return body[offset:end].decode("latin-1"), end + 1


class _Session(socketserver.BaseRequestHandler):
    def setup(self) -> None:
        self.sequence = itertools.count(1)
        self.write_lock = threading.Lock()
        with self.server.state.lock:
            self.server.state.sessions.append(self.request)

    def handle(self) -> None:
        try:
            while True:
                header = self._read(HEADER.size)
                if header is None:
                    return
                length, command, _status, sequence = HEADER.unpack(header)
                body = self._read(length - HEADER.size) if length > HEADER.size else b""
                if body is None:
                    return
                if not self._answer(command, sequence, body):
                    return
        except OSError:
            return

    def _answer(self, command: int, sequence: int, body: bytes) -> bool:
        if command & RESPONSE:
            return True  # deliver_sm_resp and the like
        if command in (BIND_RECEIVER, BIND_TRANSMITTER, BIND_TRANSCEIVER):
            self.send(command | RESPONSE, b"smsc\x00", sequence)
        elif command == ENQUIRE_LINK:
            self.send(command | RESPONSE, b"", sequence)
        elif command == UNBIND:
            self.send(command | RESPONSE, b"", sequence)
            return False
        elif command == SUBMIT_SM:
            self._submit(sequence, body)
        else:
            self.send(GENERIC_NACK, b"", sequence, status=0x03)
        return True

    def _submit(self, sequence: int, body: bytes) -> None:
        _service_type, offset = _cstring(body, 0)
        offset += 2
        source, offset = _cstring(body, offset)
        offset += 2
        destination, offset = _cstring(body, offset)
        esm_class, _protocol, _priority = body[offset : offset + 3]
        offset += 3
        _schedule, offset = _cstring(body, offset)
        _validity, offset = _cstring(body, offset)
        registered, _replace, data_coding, _default, sm_length = body[offset : offset + 5]
        offset += 5
        short_message = body[offset : offset + sm_length]
        offset += sm_length
        while offset + 4 <= len(body):  # optional parameters: a long message may travel in message_payload
            tag, size = struct.unpack(">HH", body[offset : offset + 4])
            if tag == TLV_MESSAGE_PAYLOAD:
                short_message = body[offset + 4 : offset + 4 + size]
            offset += 4 + size
        concat = None
        if esm_class & ESM_UDHI:
            udh_length = short_message[0]
            udh, short_message = short_message[1 : 1 + udh_length], short_message[1 + udh_length :]
            index = 0
            while index < len(udh):
                iei, size = udh[index], udh[index + 1]
                data = udh[index + 2 : index + 2 + size]
                if iei == IEI_CONCAT_8:
                    concat = (data[0], data[1], data[2])
                elif iei == IEI_CONCAT_16:
                    concat = ((data[0] << 8) | data[1], data[2], data[3])
                index += 2 + size
        message_id = str(next(self.server.ids))
        with self.server.state.lock:
            self.server.state.submitted.append(
                Submitted(self.server.smsc_id, destination, source, data_coding, short_message, concat)
            )
        self.send(SUBMIT_SM | RESPONSE, message_id.encode() + b"\x00", sequence)
        if registered & REGISTERED_DELIVERY:
            receipt = f"id:{message_id} sub:001 dlvrd:001 submit date:2101011200 done date:2101011200 stat:DELIVRD"
            receipt += " err:000 text:"
            timer = threading.Timer(
                RECEIPT_DELAY_SECONDS, self.deliver, args=(destination, source, receipt.encode(), ESM_DELIVERY_RECEIPT)
            )
            timer.daemon = True
            timer.start()

    def deliver(self, source: str, destination: str, payload: bytes, esm_class: int = 0, data_coding: int = 0) -> None:
        """Send a deliver_sm: a delivery receipt, or a message a phone sent."""
        body = (
            b"\x00"  # service_type
            + bytes([1, 1])
            + source.encode()
            + b"\x00"
            + bytes([0, 0])
            + destination.encode()
            + b"\x00"
            + bytes([esm_class, 0, 0])
            + b"\x00\x00"  # schedule, validity
            + bytes([0, 0, data_coding, 0, len(payload)])
            + payload
        )
        with contextlib.suppress(OSError):  # Kannel went away: a real SMSC would retry later, the test sees it
            self.send(DELIVER_SM, body, next(self.sequence))

    def send(self, command: int, body: bytes, sequence: int, status: int = 0) -> None:
        with self.write_lock:
            self.request.sendall(HEADER.pack(HEADER.size + len(body), command, status, sequence) + body)

    def _read(self, size: int) -> bytes | None:
        data = b""
        while len(data) < size:
            chunk = self.request.recv(size - len(data))
            if not chunk:
                return None
            data += chunk
        return data


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class Smsc:
    """An SMPP server on a loopback port, named `smsc_id` in what it records."""

    def __init__(self, smsc_id: str, state: SmscState, first_id: int) -> None:
        self.state = state
        self.handlers: list[_Session] = []
        outer = self

        class Handler(_Session):
            def setup(self) -> None:
                super().setup()
                outer.handlers.append(self)

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._server.state = state
        self._server.smsc_id = smsc_id
        self._server.ids = itertools.count(first_id)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    def start(self) -> Smsc:
        self._thread.start()
        return self

    def send_mo(self, phone: str, to: str, text: str, timeout: float = 20.0) -> None:
        """A phone sends `text` to `to`: a deliver_sm on the newest bound session (waits for Kannel to bind)."""
        deadline = time.monotonic() + timeout
        while not self.handlers:
            if time.monotonic() > deadline:
                raise TimeoutError("Kannel never bound to the SMSC")
            time.sleep(0.1)
        self.handlers[-1].deliver(phone.lstrip("+"), to, text.encode("latin-1"))

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
