"""Sends HL7 v2 messages to an MLLP listener over mutual TLS with the
python-hl7 package's MLLP client (which Haven did not write), and prints
each answer's MSA-1 and MSA-2 as python-hl7 parses them, one line each
(with HL7_SEND_DIGEST set, followed by the SHA-256 of the whole answer, so
a caller can tell the same ACK from another).

usage: hl7_send.py HOST PORT CA CERT KEY FILE...
"""
import hashlib
import os
import socket
import ssl
import sys

import hl7
import hl7.client


class TLSClient(hl7.client.MLLPClient):
    """python-hl7's MLLP client on a TLS 1.3 socket."""

    def __init__(self, host, port, ca, cert, key):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.load_verify_locations(ca)
        ctx.load_cert_chain(cert, key)
        raw = socket.create_connection((host, port), timeout=30)
        self.socket = ctx.wrap_socket(raw, server_hostname=host)
        self.encoding = "utf-8"


def main():
    host, port, ca, cert, key = sys.argv[1:6]
    with TLSClient(host, int(port), ca, cert, key) as client:
        for name in sys.argv[6:]:
            with open(name, "rb") as f:
                answer = client.send_message(f.read())
            while not answer.endswith(b"\x1c\r"):
                more = client.socket.recv(4096)
                if not more:
                    break
                answer += more
            ack = hl7.parse(answer.strip(b"\x0b\x1c\r").decode("utf-8"))
            msa = ack.segment("MSA")
            if os.environ.get("HL7_SEND_DIGEST"):
                print(str(msa[1]), str(msa[2]), hashlib.sha256(answer).hexdigest())
            else:
                print(str(msa[1]), str(msa[2]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
