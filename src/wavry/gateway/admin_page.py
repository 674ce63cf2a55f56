"""The admin page's HTML (Jinja2, autoescaped, inline so it ships inside the package)."""

from __future__ import annotations

import time
from typing import Any

from jinja2 import DictLoader, Environment, select_autoescape

__all__ = ["render_page"]

_BASE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Wavry gateway admin</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em;max-width:70em}
table{border-collapse:collapse;margin-bottom:1.5em}td,th{border:1px solid #bbb;padding:.3em .6em}
.msg{background:#eef;padding:.5em}.err{background:#fee;padding:.5em}form{display:inline}
</style></head><body>
<h1>Wavry gateway admin</h1>
{% block body %}{% endblock %}
</body></html>"""

_LOGIN = """{% extends "base" %}{% block body %}
{% if not enabled %}<p class="err">Admin is disabled: start the gateway with --admin-token.</p>
{% else %}
{% if error %}<p class="err" id="error">{{ error }}</p>{% endif %}
<form method="post" action="/admin/login">
<label>Admin token <input type="password" name="token" id="token" autocomplete="off"></label>
<button type="submit" id="login">Log in</button></form>{% endif %}
{% endblock %}"""

_DASH = """{% extends "base" %}{% block body %}
<form method="post" action="/admin/logout"><button type="submit">Log out</button></form>
{% if msg %}<p class="msg" id="msg">{{ msg }}</p>{% endif %}
<h2>Overview</h2>
<table id="overview">
<tr><th>users</th><td>{{ overview.users }}</td></tr>
<tr><th>devices (online)</th><td>{{ overview.devices }} ({{ overview.devices_online }})</td></tr>
<tr><th>live sessions (signaling sockets)</th><td id="live">{{ overview.live_sessions }}</td></tr>
<tr><th>signaling sockets here</th><td>{{ overview.signal_sockets_here }}</td></tr>
<tr><th>unexpired login tokens</th><td>{{ overview.active_tokens }}</td></tr>
<tr><th>instance</th><td>{{ overview.instance }}</td></tr></table>
<h2>Relays</h2>
<table id="relays"><tr><th>id</th><th>address</th><th>region</th><th>state</th><th>load %</th>
<th>sessions</th><th>grants</th></tr>
{% for r in overview.relays %}<tr><td>{{ r.relay_id }}</td><td>{{ r.public_addr }}</td>
<td>{{ r.region }}</td><td>{{ r.state }}</td><td>{{ r.load_pct }}</td><td>{{ r.sessions }}</td>
<td>{{ r.grants }}</td></tr>{% endfor %}</table>
<h2>Users</h2>
<table id="users">
<tr><th>username</th><th>email</th><th>2FA</th><th>status</th><th>actions</th></tr>
{% for u in users %}<tr data-username="{{ u.username }}"><td>{{ u.username }}</td>
<td>{{ u.email }}</td><td>{{ "on" if u.totp_enabled else "off" }}</td>
<td>{% if u.banned %}banned until {{ fmt(u.banned_until) }}{% else %}active{% endif %}</td><td>
{% if u.banned %}<form method="post" action="/admin/users/{{ u.id }}/unban">
<button type="submit" class="unban">Unban</button></form>
{% else %}<form method="post" action="/admin/users/{{ u.id }}/ban">
<input name="hours" size="4" placeholder="hours"><input name="reason" placeholder="reason">
<button type="submit" class="ban">Ban</button></form>{% endif %}
<form method="post" action="/admin/users/{{ u.id }}/revoke">
<button type="submit" class="revoke">Revoke sessions</button></form></td></tr>
{% endfor %}</table>
<h2>Devices</h2>
<table id="devices"><tr><th>name</th><th>kind</th><th>owner</th><th>online</th>
<th>last seen (UTC)</th><th>Wavry ID</th></tr>
{% for d in devices %}<tr data-wavry-id="{{ d.wavry_id }}"><td>{{ d.name }}</td>
<td>{{ d.kind }}</td><td>{{ d.owner }}</td><td>{{ "yes" if d.online else "no" }}</td>
<td>{{ fmt(d.last_seen) }}</td><td><code>{{ d.wavry_id }}</code></td></tr>{% endfor %}</table>
<h2>Audit log</h2>
<table id="audit"><tr><th>time (UTC)</th><th>actor</th><th>action</th><th>target</th>
<th>detail</th><th>ip</th></tr>
{% for a in audit %}<tr><td>{{ fmt(a.at) }}</td><td>{{ a.actor }}</td><td>{{ a.action }}</td>
<td>{{ a.target }}</td><td>{{ a.detail }}</td><td>{{ a.ip }}</td></tr>{% endfor %}</table>
{% endblock %}"""

_env = Environment(
    loader=DictLoader({"base": _BASE, "login": _LOGIN, "dashboard": _DASH}),
    autoescape=select_autoescape(default=True, default_for_string=True),
)


def _fmt(ts: float | None) -> str:
    if ts is None:
        return ""
    if ts >= 1e11:
        return "forever"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts))


def render_page(name: str, **ctx: Any) -> str:
    return _env.get_template(name).render(fmt=_fmt, **ctx)
