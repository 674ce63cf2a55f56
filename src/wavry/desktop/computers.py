"""The Computers view: the hosts on this network (mDNS), the account's hosts (online, last seen,
shared with me), recent connections and an address to type; Connect opens the stream
(:class:`~wavry.desktop.streaming.StreamController`) and answers its questions — the pairing
code, and a host whose pinned identity changed ("forget and retry" only once the user
confirmed)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from wavry.desktop.accounts import AccountService
from wavry.desktop.dialogs import IdentityChangedDialog, PairingCodeDialog
from wavry.desktop.discovery import (
    NO_LAN_DISCOVERY,
    find_lan_hosts,
    lan_discovery_available,
    reach_by_name_available,
)
from wavry.desktop.prefs import Prefs
from wavry.desktop.streaming import StreamController
from wavry.desktop.widgets import Banner, ago, run_task, short_id, title

__all__ = ["ComputersView", "Target"]

ONLINE = QColor("#188038")
OFFLINE = QColor("#80868b")


@dataclass(frozen=True, slots=True)
class Target:
    """Something Connect can open: what to give `wavry connect`, and what to call it."""

    target: str
    label: str
    wavry_id: str = ""
    reachable: bool = True
    why_not: str = ""
    options: tuple[str, ...] = ()  # more for `wavry connect` (the gateway of an account host)


class ComputersView(QWidget):
    """Signals: ``stream_opened`` (the stream connected: show the live session)."""

    stream_opened = Signal()

    def __init__(
        self,
        prefs: Prefs,
        account: AccountService,
        stream: StreamController,
        this_id: str,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.prefs, self.account, self.stream, self.this_id = prefs, account, stream, this_id
        self.lan: list[Any] = []
        self.lan_note = ""
        self.searching = False
        self.dialog: Any = None
        self.pending: Target | None = None
        lay = QVBoxLayout(self)
        lay.addWidget(title("Computers"))
        self.banner = Banner()
        lay.addWidget(self.banner)

        row = QHBoxLayout()
        label = QLabel("&Address or name")
        self.address = QLineEdit()
        self.address.setPlaceholderText("192.168.1.20, 192.168.1.20:47800, or an account host")
        self.address.setAccessibleName("Address or name to connect to")
        label.setBuddy(self.address)
        self.address.returnPressed.connect(self.connect_typed)
        self.go = QPushButton("Co&nnect")
        self.go.setAccessibleName("Connect to the address")
        self.go.clicked.connect(self.connect_typed)
        row.addWidget(label)
        row.addWidget(self.address, 1)
        row.addWidget(self.go)
        lay.addLayout(row)

        self.tree = QTreeWidget()
        self.tree.setColumnCount(4)
        self.tree.setHeaderLabels(["Computer", "Where", "State", "Wavry ID"])
        self.tree.setRootIsDecorated(False)
        self.tree.setUniformRowHeights(True)
        self.tree.setAccessibleName("Computers you can connect to")
        header = self.tree.header()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in (1, 2, 3):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        self.tree.itemActivated.connect(lambda item, _col: self.connect_item(item))
        self.tree.currentItemChanged.connect(lambda *_: self._selection())
        lay.addWidget(self.tree, 1)

        buttons = QHBoxLayout()
        self.connect_button = QPushButton("&Connect")
        self.connect_button.clicked.connect(lambda: self.connect_item(self.tree.currentItem()))
        self.forget_button = QPushButton("&Forget this recent connection")
        self.forget_button.clicked.connect(self._forget_recent)
        self.search_button = QPushButton("Search the &LAN again")
        self.search_button.clicked.connect(self.search_lan)
        self.lan_available = lan_discovery_available()
        if not self.lan_available:  # nothing to search with: say so once, offer no button
            self.lan_note = NO_LAN_DISCOVERY
            self.search_button.hide()
        self.status = QLabel()
        self.status.setWordWrap(True)
        for b in (self.connect_button, self.forget_button, self.search_button):
            buttons.addWidget(b)
        buttons.addWidget(self.status, 1)
        lay.addLayout(buttons)

        account.hosts_changed.connect(self.refresh)
        account.changed.connect(self._account_changed)
        account.problem.connect(lambda text: self.banner.error(text))
        stream.ask_pairing.connect(self._ask_pairing)
        stream.ask_identity.connect(self._ask_identity)
        stream.connected.connect(self._connected)
        stream.ended.connect(self._ended)
        stream.state_changed.connect(lambda *_: self._selection())
        self._lan_timer = QTimer(self)
        self._lan_timer.setInterval(30_000)
        self._lan_timer.timeout.connect(self.search_lan)
        self.refresh()

    # ---- the list -------------------------------------------------------------------------

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        self.account.start_polling()
        if not self.lan_available:
            return
        if not self.lan and not self.searching:
            self.search_lan()
        self._lan_timer.start()

    def hideEvent(self, event: Any) -> None:
        super().hideEvent(event)
        self._lan_timer.stop()

    def _account_changed(self) -> None:
        if self.isVisible():
            self.account.start_polling()  # signed in while the list is shown
        self.refresh()

    def stop_searching(self) -> None:
        self._lan_timer.stop()

    def search_lan(self) -> None:
        if self.searching:
            return
        self.searching = True
        self.search_button.setEnabled(False)
        self.status.setText("Searching the LAN…")

        def found(result: tuple[list[Any], str]) -> None:
            self.lan, self.lan_note = result
            self.refresh()

        task = run_task(find_lan_hosts(), self.banner, "searching the LAN", found)
        task.add_done_callback(lambda _t: self._searched())

    def _searched(self) -> None:
        self.searching = False
        self.search_button.setEnabled(True)
        self._selection()

    def _group(self, text: str) -> QTreeWidgetItem:
        item = QTreeWidgetItem([text])
        item.setFlags(Qt.ItemFlag.ItemIsEnabled)
        font = item.font(0)
        font.setBold(True)
        item.setFont(0, font)
        self.tree.addTopLevelItem(item)
        item.setFirstColumnSpanned(True)  # only takes once the item is in the tree
        return item

    def _row(self, cols: list[str], target: Target | None, online: bool | None = None) -> None:
        item = QTreeWidgetItem(cols)
        item.setData(0, Qt.ItemDataRole.UserRole, target)
        if target is None:
            item.setFlags(Qt.ItemFlag.ItemIsEnabled)
            item.setForeground(0, QBrush(OFFLINE))
            item.setToolTip(0, cols[0].strip())
        if online is not None:
            item.setForeground(2, QBrush(ONLINE if online else OFFLINE))
        if target is not None and target.wavry_id:
            item.setToolTip(3, target.wavry_id)
        self.tree.addTopLevelItem(item)
        if target is None:
            item.setFirstColumnSpanned(True)  # a note across the table, not cut at "Computer"

    def refresh(self) -> None:
        current = self.tree.currentItem()
        keep = current.data(0, Qt.ItemDataRole.UserRole) if current is not None else None
        self.tree.clear()
        self._group("On this network")
        for h in self.lan:
            t = Target(h.target, h.name or h.address, h.wavry_id)
            self._row([h.name, h.address, "on the LAN", short_id(h.wavry_id)], t, True)
        if not self.lan:
            note = self.lan_note or ("Searching…" if self.searching else "No computer answered.")
            self._row([f"    {note}"], None)
        self._group("Your account")
        self._account_rows()
        self._group("Recent")
        recent = self.prefs.desktop().recent
        for r in recent:
            t = Target(r.target, r.name or r.target, r.wavry_id)
            self._row([r.name or r.target, r.target, ago(r.at), short_id(r.wavry_id)], t)
        if not recent:
            self._row(["    Computers you connect to appear here."], None)
        self._reselect(keep)
        self._selection()

    def _account_rows(self) -> None:
        a = self.account
        if not a.signed_in:
            self._row(["    Not signed in: sign in (Settings → Account) to see your computers."],
                      None)  # fmt: skip
            return
        hosts = [h for h in a.hosts if h.wavry_id != self.this_id]
        if a.hosts_at is None:
            self._row(["    Asking the gateway…"], None)
            return
        for h in hosts:
            name = f"{h.owner}/{h.name}" if h.owner else h.name
            state = "online" if h.online else f"offline, seen {ago(h.last_seen)}"
            where = f"shared by {h.owner}" if h.shared else "your account"
            why = "" if h.online else f"{name} is offline"
            if h.online and not reach_by_name_available():
                why = (
                    f"Connecting to {name} through the gateway is not in this version of wavry: "
                    "type its address above."
                )
            gateway = ("--gateway", a.account.gateway_url) if a.account is not None else ()
            t = Target(name, name, h.wavry_id, not why, why, gateway)
            self._row([name, where, state, short_id(h.wavry_id)], t, h.online)
            if h.online and self.banner.text == f"{name} is offline":
                self.banner.hide()  # it came online since: the news is stale
        if not hosts:
            self._row(["    No other computer on this account yet: share one (This computer)."],
                      None)  # fmt: skip

    def _reselect(self, keep: Any) -> None:
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            if (
                item is not None
                and keep is not None
                and item.data(0, Qt.ItemDataRole.UserRole) == keep
            ):
                self.tree.setCurrentItem(item)
                return

    def selected(self) -> Target | None:
        item = self.tree.currentItem()
        data = item.data(0, Qt.ItemDataRole.UserRole) if item is not None else None
        return data if isinstance(data, Target) else None

    def _selection(self) -> None:
        t = self.selected()
        self.connect_button.setEnabled(t is not None and t.reachable and not self.stream.running)
        recent = {r.target for r in self.prefs.desktop().recent}
        item = self.tree.currentItem()
        in_recent = (
            t is not None
            and t.target in recent
            and item is not None
            and (self._section_of(item) == "Recent")
        )
        self.forget_button.setEnabled(in_recent)
        if self.stream.running:
            self.status.setText(f"Streaming from {self.stream.label}." if self.stream.state ==
                                "streaming" else f"Connecting to {self.stream.label}…")  # fmt: skip
        elif t is not None and not t.reachable:
            self.status.setText(t.why_not)  # why Connect is greyed out
        elif not self.searching:
            self.status.setText("")

    def _section_of(self, item: QTreeWidgetItem) -> str:
        index = self.tree.indexOfTopLevelItem(item)
        for i in range(index, -1, -1):
            it = self.tree.topLevelItem(i)
            if (
                it is not None
                and it.data(0, Qt.ItemDataRole.UserRole) is None
                and it.font(0).bold()
            ):
                return it.text(0)
        return ""

    def _forget_recent(self) -> None:
        t = self.selected()
        if t is not None:
            self.prefs.forget_recent(t.target)
            self.refresh()

    # ---- connecting -------------------------------------------------------------------------

    def connect_typed(self) -> None:
        text = self.address.text().strip()
        if not text or any(c.isspace() for c in text):
            self.banner.error("Type an address (192.168.1.20 or 192.168.1.20:47800) or a name.")
            self.address.setFocus()
            return
        self.open(Target(text, text))

    def connect_item(self, item: QTreeWidgetItem | None) -> None:
        data = item.data(0, Qt.ItemDataRole.UserRole) if item is not None else None
        if isinstance(data, Target):
            self.open(data)

    def open(self, t: Target) -> None:
        if not t.reachable:
            self.banner.error(t.why_not or f"{t.label} cannot be reached now")
            return
        if self.stream.running:
            self.banner.error(f"A stream to {self.stream.label} is open: disconnect it first.")
            return
        self.banner.hide()
        self.pending = t
        self.stream.start(t.target, t.wavry_id or None, t.label, list(t.options))
        self.status.setText(f"Connecting to {t.label}…")

    def _connected(self, info: dict[str, Any]) -> None:
        t = self.pending
        if t is not None:
            name = str(info.get("host_name") or t.label)
            try:
                self.prefs.remember(t.target, name, str(info.get("host_id") or t.wavry_id))
            except Exception as exc:  # the stream runs anyway; say why it is not remembered
                self.banner.error(f"cannot remember this connection: {exc}")
            self.refresh()
        self.stream_opened.emit()

    def _ended(self, why: str) -> None:
        self._close_dialog()
        if why:
            label = self.pending.label if self.pending else self.stream.label
            self.banner.error(f"{label}: {why}")
        self.pending = None
        self._selection()

    def _close_dialog(self) -> None:
        dialog, self.dialog = self.dialog, None
        if dialog is not None:
            dialog.done(0)

    def _ask_pairing(self, ask: dict[str, Any]) -> None:
        self._close_dialog()
        dialog = PairingCodeDialog(ask, self.stream.label, self)
        self.dialog = dialog

        def answered(result: int) -> None:
            if self.dialog is dialog:
                self.dialog = None
                self.stream.answer_pairing(dialog.code if result else None)

        dialog.finished.connect(answered)
        dialog.open()

    def _ask_identity(self, ask: dict[str, Any]) -> None:
        self._close_dialog()
        dialog = IdentityChangedDialog(ask, self)
        self.dialog = dialog

        def answered(result: int) -> None:
            if self.dialog is dialog:
                self.dialog = None
                self.stream.answer_identity(bool(result) and dialog.confirm.isChecked())

        dialog.finished.connect(answered)
        dialog.open()
