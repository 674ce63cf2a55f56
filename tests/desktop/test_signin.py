"""First run and the account against a real `wavry gateway`: choose a gateway, create an account,
turn two-factor sign-in on with a code made from the secret the app shows, sign out, sign in
again through the TOTP step; the account's devices; wrong passwords and an unreachable gateway
as readable lines."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pyotp

from tests.desktop.conftest import click, run, type_into, until
from wavry.config import load
from wavry.desktop.signin import TotpSetup
from wavry.settings import DesktopSettings

PASSWORD = "correct horse battery staple 42"


def test_first_run_register_with_totp_then_sign_in_again(
    desk: Any, gateway: Any, shot: Any
) -> None:
    async def scenario() -> None:
        desk.start()
        fr = desk.first_run
        assert fr is not None and fr.isVisible()
        await asyncio.sleep(0.1)
        shot(fr, "first-run")
        click(fr.gateway)
        type_into(fr.url, gateway.url)
        click(fr.next)
        assert fr.pages.currentIndex() == 1
        form = fr.form
        assert form.url.text() == gateway.url
        form.tabs.setCurrentIndex(1)
        type_into(form.r_user, "ada")
        type_into(form.r_email, "ada@example.org")
        type_into(form.r_password, PASSWORD)
        type_into(form.r_confirm, PASSWORD)
        click(form.register_button)
        await until(lambda: desk.account.signed_in, what="registered and signed in")
        await until(lambda: form.after.isVisible(), what="the offer of two-factor sign-in")
        setup = form.after.currentWidget().findChild(TotpSetup)
        assert setup.password.text() == PASSWORD
        click(setup.begin)
        await until(lambda: setup.steps.currentIndex() == 1, what="the TOTP secret")
        secret = setup.secret_edit.text()
        assert len(secret) >= 16
        shot(fr, "first-run-totp")
        type_into(setup.code, pyotp.TOTP(secret).now())
        click(setup.enable)
        await until(lambda: not fr.isVisible(), what="the first run to finish")
        d = load(DesktopSettings, desk.prefs.path)
        assert d.set_up and d.network.value == "gateway" and d.gateway_url == gateway.url
        # the gateway knows this device (kind host: the app shares it too) and TOTP is on
        token = desk.account.account.token
        auth = {"Authorization": f"Bearer {token}"}
        me = httpx.get(gateway.url + "/v1/me", headers=auth).json()
        assert me["user"]["totp_enabled"] is True
        assert [d["kind"] for d in me["devices"]] == ["host"]

        # sign out in Settings → Account; sign in again: the TOTP step appears
        w = desk.window
        w.show_view("settings")
        view = w.settings
        view.tabs.setCurrentIndex(4)
        await until(lambda: view.devices.topLevelItemCount() == 1, what="the device list")
        assert "(this computer)" in view.devices.topLevelItem(0).text(0)
        shot(w, "settings-account")
        click(view.sign_out)
        await until(lambda: not desk.account.signed_in, what="signed out")
        assert httpx.get(gateway.url + "/v1/me", headers=auth).status_code == 401
        signin = view.sign_in_form
        await until(lambda: signin.isVisible(), what="the sign-in form")
        assert signin.url.text() == gateway.url
        type_into(signin.login, "ada")
        type_into(signin.password, "wrong password")
        click(signin.sign_in_button)
        await until(lambda: signin.banner.isVisible(), what="the wrong-password message")
        assert signin.banner.kind == "error"
        assert signin.banner.label.text().startswith("cannot sign in: ")
        type_into(signin.password, PASSWORD)
        await until(lambda: signin.sign_in_button.isEnabled(), what="the form to be ready")
        click(signin.sign_in_button)
        await until(lambda: signin.totp.isVisible(), what="the TOTP step")
        assert not desk.account.signed_in
        # the code of the next 30 s step: a code is good for one sign-in only
        type_into(signin.totp, pyotp.TOTP(secret).at(time.time() + 30))
        click(signin.sign_in_button)
        await until(lambda: desk.account.signed_in, what="signed in with the TOTP code")
        assert desk.account.account.username == "ada"
        assert "ada on " in w.account_state.text()

    run(desk, scenario(), 120)


def test_an_unreachable_gateway_is_one_readable_line(desk: Any) -> None:
    async def scenario() -> None:
        desk.start()
        fr = desk.first_run
        click(fr.gateway)
        type_into(fr.url, "http://127.0.0.1:9")  # nothing listens there
        click(fr.next)
        form = fr.form
        type_into(form.login, "ada")
        type_into(form.password, PASSWORD)
        click(form.sign_in_button)
        await until(lambda: form.banner.isVisible(), what="the error line")
        text = form.banner.label.text()
        assert text.startswith("cannot sign in: cannot reach the gateway at http://127.0.0.1:9")
        assert "\n" not in text and "Traceback" not in text
        await until(lambda: form.sign_in_button.isEnabled(), what="ready for another try")

    run(desk, scenario())


def test_this_network_only_skips_the_account(desk: Any) -> None:
    async def scenario() -> None:
        desk.start()
        fr = desk.first_run
        assert fr.lan.isChecked()
        click(fr.next)
        assert not fr.isVisible()

    run(desk, scenario())
    d = load(DesktopSettings, desk.prefs.path)
    assert d.set_up and d.network.value == "lan"
    assert not desk.account.signed_in
