"""The window's central area: the live image, or a message with a way forward when there is none.

The image is painted scaled to the widget keeping its aspect ratio (black bars fill the rest), so the
window can be any size. The message panel replaces it when a source cannot be opened or stops — a
sentence and buttons to open a video or the demo clip, never a traceback.
"""
from __future__ import annotations

from PyQt6.QtCore import QRectF, QSize, Qt, pyqtSignal
from PyQt6.QtGui import QImage, QPainter, QPaintEvent
from PyQt6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSizePolicy, QVBoxLayout, QWidget


def fit_rect(image_size: QSize, area: QSize) -> QRectF:
    """The largest rectangle with ``image_size``'s aspect ratio centred in ``area``."""
    if image_size.isEmpty() or area.isEmpty():
        return QRectF()
    scale = min(area.width() / image_size.width(), area.height() / image_size.height())
    width, height = image_size.width() * scale, image_size.height() * scale
    return QRectF((area.width() - width) / 2, (area.height() - height) / 2, width, height)


class VideoView(QWidget):
    """Shows the newest annotated frame, scaled to fit with its aspect ratio kept."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._image = QImage()
        self.setMinimumSize(320, 180)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)

    @property
    def image(self) -> QImage:
        return self._image

    def set_image(self, image: QImage) -> None:
        self._image = image
        self.update()

    def clear(self) -> None:
        self.set_image(QImage())

    def image_rect(self) -> QRectF:
        """Where the image is drawn inside the widget (empty without an image)."""
        return fit_rect(self._image.size(), self.size())

    def sizeHint(self) -> QSize:
        return QSize(960, 540)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), Qt.GlobalColor.black)
        if not self._image.isNull():
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
            painter.drawImage(self.image_rect(), self._image)
        painter.end()


class MessagePanel(QWidget):
    """A message (why there is no picture) with buttons to open a video file or play the demo clip."""

    openVideoRequested = pyqtSignal()
    demoRequested = pyqtSignal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.label = QLabel(alignment=Qt.AlignmentFlag.AlignCenter, wordWrap=True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        font = self.label.font()
        font.setPointSizeF(font.pointSizeF() * 1.2)
        self.label.setFont(font)
        self.open_button = QPushButton("Open video file…")
        self.open_button.clicked.connect(self.openVideoRequested)
        self.demo_button = QPushButton("Play the demo clip")
        self.demo_button.clicked.connect(self.demoRequested)
        buttons = QHBoxLayout()
        buttons.addStretch()
        buttons.addWidget(self.open_button)
        buttons.addWidget(self.demo_button)
        buttons.addStretch()
        layout = QVBoxLayout(self)
        layout.addStretch()
        layout.addWidget(self.label)
        layout.addLayout(buttons)
        layout.addStretch()

    def show_message(self, text: str, demo_available: bool) -> None:
        self.label.setText(text)
        self.demo_button.setVisible(demo_available)

    @property
    def text(self) -> str:
        return self.label.text()
