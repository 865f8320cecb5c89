"""files.*: the two-step external upload (get a URL, upload, complete)."""

from __future__ import annotations

import time

from ..records import JSON, UploadedFile
from .args import ApiError, Args, error_messages
from .base import MethodsBase


class FileMethods(MethodsBase):
    def files_get_upload_url(self, args: Args) -> JSON:
        filename = args.opt("filename")
        length = args.num("length", -1)
        if not filename:
            raise ApiError(
                "invalid_arguments",
                response_metadata=error_messages(["missing required field: filename"]),
            )
        if length < 0:
            raise ApiError(
                "invalid_arguments",
                response_metadata=error_messages(["missing required field: length"]),
            )
        fid = self.ws.new_id("F")
        self.ws.files[fid] = UploadedFile(
            id=fid, name=filename, length=length, user=self.ws.bot_user_id, created=int(time.time())
        )
        return {"upload_url": f"{self.upload_base}/upload/v1/{fid}", "file_id": fid}

    def file_dict(self, f: UploadedFile) -> JSON:
        return {
            "id": f.id,
            "created": f.created,
            "timestamp": f.created,
            "name": f.name,
            "title": f.title or f.name,
            "mimetype": "application/octet-stream",
            "filetype": f.name.rsplit(".", 1)[-1] if "." in f.name else "binary",
            "user": f.user,
            "size": len(f.content or b""),
            "mode": "hosted",
            "is_external": False,
            "is_public": False,
            "url_private": f"https://files.slack.com/files-pri/{self.ws.team_id}-{f.id}/{f.name}",
            "permalink": f"https://{self.ws.team_domain}.slack.com/files/{f.user}/{f.id}/{f.name}",
            "channels": list(f.channels),
        }

    def files_complete_upload(self, args: Args) -> JSON:
        items = args.json("files", "invalid_arguments")
        if not isinstance(items, list) or not items:
            raise ApiError(
                "invalid_arguments",
                response_metadata=error_messages(["missing required field: files"]),
            )
        channel = args.opt("channel_id") or (args.opt("channels") or "").split(",")[0] or None
        ch = self._post_target(channel) if channel else None
        done = []
        for item in items:
            f = self.ws.files.get(str(item.get("id"))) if isinstance(item, dict) else None
            if f is None or f.content is None:
                raise ApiError("file_not_found")
            f.title = str(item.get("title") or f.name)
            f.completed = True
            if ch is not None:
                f.channels.append(ch.id)
            done.append(f)
        if ch is not None:
            msg = self.bot_message(
                ch,
                args.opt("initial_comment") or "",
                thread_ts=args.opt("thread_ts"),
                files=[self.file_dict(f) for f in done],
            )
            self.post(msg)
        return {"files": [{"id": f.id, "title": f.title} for f in done]}
