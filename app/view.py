"""The window's central area: the live image, or a message with a way forward when there is none.

The image is painted scaled to the widget keeping its aspect ratio (black bars fill the rest), so the
window can be any size. The message panel replaces it when a source cannot be opened or stops — a
sentence and buttons to open a video or the demo clip, never a traceback. Under the picture, video
files get a transport bar: play/pause, frame steps and a seek bar with the position.
"""
from __future__ import annotations

from PyQt6.QtCore import QRectF, QSize, Qt, pyqtSignal
from PyQt6.QtGui import QAction, QImage, QPainter, QPaintEvent
from PyQt6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSizePolicy, QSlider, QToolButton, QVBoxLayout, QWidget

from core.io.video import SourceInfo


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


def clock(seconds: float) -> str:
    """``83.4`` → ``1:23.4`` (a video position as people read it)."""
    minutes, seconds = divmod(max(0.0, seconds), 60)
    return f"{int(minutes)}:{seconds:04.1f}"


class TransportBar(QWidget):
    """Play/pause, previous/next frame and a seek bar for a video file; hidden for cameras.

    The slider follows the frame on screen; dragging or clicking it asks for a seek (``seekRequested``
    with the frame number). Updates from playback never emit ``seekRequested``.
    """

    seekRequested = pyqtSignal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._info: SourceInfo | None = None
        self._position: int | None = None
        self.buttons = QHBoxLayout()
        self.buttons.setSpacing(2)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setToolTip("Seek: drag or click; , and . step one frame")
        self.slider.valueChanged.connect(self.seekRequested)
        self.time_label = QLabel()
        self.time_label.setMinimumWidth(self.fontMetrics().horizontalAdvance("00:00.0 / 00:00.0 · frame 00000"))
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 2, 8, 2)
        layout.addLayout(self.buttons)
        layout.addWidget(self.slider, 1)
        layout.addWidget(self.time_label)
        self.hide()

    def set_actions(self, *actions: QAction) -> None:
        for action in actions:
            button = QToolButton()
            button.setDefaultAction(action)
            self.buttons.addWidget(button)

    def set_source(self, info: SourceInfo | None) -> None:
        """Show the bar for a seekable file (``info`` with a frame count), hide it for anything else."""
        self._info, self._position = info, None
        self.setVisible(info is not None)
        if info is not None:
            self.slider.blockSignals(True)
            self.slider.setRange(0, info.frame_count - 1)
            self.slider.setPageStep(max(1, round(info.fps * 5)))  # a click beside the handle: 5 s
            self.slider.setValue(0)
            self.slider.blockSignals(False)
            self.show_position(None)

    @property
    def position(self) -> int | None:
        """The file frame on screen (None before the first one)."""
        return self._position

    def show_position(self, position: int | None) -> None:
        if self._info is None:
            return
        self._position = position if position is not None else self._position
        shown = self._position or 0
        if not self.slider.isSliderDown():  # never fight the user's drag
            self.slider.blockSignals(True)
            self.slider.setValue(shown)
            self.slider.blockSignals(False)
        self.time_label.setText(f"{clock(shown / self._info.fps)} / {clock(self._info.frame_count / self._info.fps)}"
                                f" · frame {shown}")
