"""The notice area above the picture: every notice the user should see, each until dismissed.

One line of text could hold only the newest notice, so "No camera…" hid "the configured model could not
be used" and "settings were reset". Here each notice is its own row with its own Dismiss button, newest
at the bottom. The same text is shown once. When more than :data:`MAX_NOTICES` pile up, the oldest
ordinary notice goes first; a *sticky* one (a problem the user must act on, like a model that could not
be used) only goes when dismissed.
"""
from __future__ import annotations

from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

MAX_NOTICES = 4


class Notice(QWidget):
    """One row: the text and a Dismiss button that removes the row."""

    def __init__(self, text: str, sticky: bool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.sticky = sticky
        self.label = QLabel(text, wordWrap=True)
        self.dismiss_button = QPushButton("Dismiss")
        self.dismiss_button.setFlat(True)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 2, 8, 2)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.dismiss_button)

    @property
    def text(self) -> str:
        return self.label.text()


class NoticeStack(QWidget):
    """The rows of notices; hidden while there are none."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground)
        self.setStyleSheet("NoticeStack { background: #fff3cd; } QLabel { color: #664d03; }")
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 2, 0, 2)
        self._layout.setSpacing(0)
        self.notices: list[Notice] = []
        self.hide()

    def show_notice(self, text: str, sticky: bool = False) -> Notice:
        """Add ``text`` as a row (or return the row already showing it); ``sticky`` rows are never
        pushed out by newer ones."""
        for notice in self.notices:
            if notice.text == text:
                notice.sticky = notice.sticky or sticky
                return notice
        notice = Notice(text, sticky, self)
        notice.dismiss_button.clicked.connect(lambda: self.dismiss(notice))
        self.notices.append(notice)
        self._layout.addWidget(notice)
        overflow = [n for n in self.notices if not n.sticky][:max(0, len(self.notices) - MAX_NOTICES)]
        for old in overflow:
            self.dismiss(old)
        self.show()
        return notice

    def dismiss(self, notice: Notice) -> None:
        if notice in self.notices:
            self.notices.remove(notice)
            self._layout.removeWidget(notice)
            notice.deleteLater()
        self.setVisible(bool(self.notices))

    @property
    def text(self) -> str:
        """Every notice shown, one per line."""
        return "\n".join(n.text for n in self.notices)
