#!/usr/bin/python3
"""Reads a Maildir as a mail client would and prints one JSON object per
message: to, cc, from, subject (decoded), message_id, date, content types,
the text/plain part (decoded) and whether an HTML part exists.
Usage: mailbox.py MAILDIR [--to ADDRESS]"""
import email
import email.policy
import json
import os
import sys


def main():
    maildir = sys.argv[1]
    want_to = sys.argv[3] if len(sys.argv) > 3 and sys.argv[2] == "--to" else None
    for sub in ("new", "cur"):
        folder = os.path.join(maildir, sub)
        if not os.path.isdir(folder):
            continue
        for name in sorted(os.listdir(folder)):
            with open(os.path.join(folder, name), "rb") as f:
                msg = email.message_from_binary_file(f, policy=email.policy.default)
            to = str(msg.get("To", ""))
            if want_to and want_to not in to:
                continue
            text = msg.get_body(preferencelist=("plain",))
            html = msg.get_body(preferencelist=("html",))
            print(json.dumps({
                "to": to,
                "cc": str(msg.get("Cc", "")),
                "from": str(msg.get("From", "")),
                "subject": str(msg.get("Subject", "")),
                "message_id": str(msg.get("Message-ID", "")),
                "date": str(msg.get("Date", "")),
                "content_type": msg.get_content_type(),
                "text": text.get_content() if text is not None else "",
                "has_html": html is not None,
                "defects": len(msg.defects),
            }, ensure_ascii=False))


if __name__ == "__main__":
    main()
