"""An aiosmtpd handler for the delivery tests: every message received is parsed with Python's
own e-mail package and written to the output folder as NNNN.json (envelope, headers, the plain
text body, the attachments' names, types and sizes) with each attachment beside it as a file.
The JSON is written to a temporary name and renamed, so a test polling the folder never reads
half of it.

    PYTHONPATH=api/tests/smtp python3 -m aiosmtpd -n -l 127.0.0.1:PORT \
        --tlscert cert.pem --tlskey key.pem -c capture.Capture OUT_DIR
"""

import email
import email.policy
import json
import os


class Capture:
    def __init__(self, out_dir):
        self.out_dir = out_dir
        os.makedirs(out_dir, exist_ok=True)
        self.count = 0

    @classmethod
    def from_cli(cls, parser, *args):
        if len(args) != 1:
            parser.error("capture.Capture takes one argument: the output folder")
        return cls(args[0])

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        base = os.path.join(self.out_dir, "%04d" % self.count)
        message = email.message_from_bytes(envelope.original_content or envelope.content, policy=email.policy.default)
        body = None
        attachments = []
        for part in message.walk():
            if part.is_multipart():
                continue
            filename = part.get_filename()
            if filename:
                data = part.get_payload(decode=True)
                path = "%s-%d-%s" % (base, len(attachments), filename)
                with open(path, "wb") as f:
                    f.write(data)
                attachments.append({
                    "filename": filename,
                    "content_type": part.get_content_type(),
                    "path": path,
                    "bytes": len(data),
                })
            elif part.get_content_type() == "text/plain" and body is None:
                body = part.get_content()
        summary = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "from": str(message["from"]),
            "to": str(message["to"]),
            "subject": str(message["subject"]),
            "body": body,
            "attachments": attachments,
            "tls": bool(getattr(session, "ssl", None)),
        }
        with open(base + ".json.tmp", "w", encoding="utf-8") as f:
            json.dump(summary, f, ensure_ascii=False)
        os.rename(base + ".json.tmp", base + ".json")
        return "250 OK"
