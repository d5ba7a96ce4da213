"""Darknet ``.cfg`` files: parse them into sections, check them against what defi1 can build, write them back.

A darknet cfg is a list of ``[section]`` headers, each followed by ``key = value`` lines; ``#`` and ``;`` start
comments. The first section is ``[net]`` (input size and training settings); every following section is one layer
of the network, numbered from 0 in file order (darknet's layer indices, used by ``[route] layers =`` and
``[shortcut] from =``).

defi1 builds the YOLOv3 family: sections ``net``, ``convolutional``, ``shortcut``, ``route``, ``upsample``,
``maxpool`` and ``yolo``. :func:`check_supported` rejects any other section or key with a :class:`ConfigError` that
names the file, the section and its line.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from defi1.errors import ConfigError

SECTION_ALIASES = {"conv": "convolutional", "network": "net", "max": "maxpool"}

#: Keys of ``[net]`` that defi1 reads.
NET_KEYS_READ = frozenset({"width", "height", "channels"})
#: Keys of ``[net]`` that only matter to darknet's own training loop; accepted and ignored.
NET_KEYS_IGNORED = frozenset({
    "batch", "subdivisions", "momentum", "decay", "angle", "saturation", "exposure", "hue", "learning_rate",
    "burn_in", "max_batches", "policy", "steps", "scales", "step", "scale", "gamma", "power", "max_crop", "min_crop",
    "aspect", "flip", "inputs", "time_steps", "notruth", "random", "adam", "B1", "B2", "eps", "letter_box", "mosaic",
    "jitter", "blur", "mixup", "cutmix", "seq_scales", "max_chart_loss",
})

#: Supported keys of each layer section, with darknet's default values (``None``: the key is required).
LAYER_KEYS = {
    "convolutional": {"filters": "1", "size": "1", "stride": "1", "pad": "0", "padding": "0", "activation": "logistic",
                      "batch_normalize": "0", "groups": "1", "dilation": "1"},
    "shortcut": {"from": None, "activation": "linear"},
    "route": {"layers": None},
    "upsample": {"stride": "2"},
    "maxpool": {"size": "1", "stride": "1", "padding": None},
    "yolo": {"mask": None, "anchors": None, "classes": "20", "num": "1", "jitter": ".2", "ignore_thresh": ".5",
             "truth_thresh": "1", "random": "0", "max": "90", "counters_per_class": None, "label_smooth_eps": None},
}

#: Activations of ``[convolutional]`` layers that defi1 builds.
SUPPORTED_ACTIVATIONS = ("leaky", "linear", "relu", "logistic")


@dataclasses.dataclass
class Section:
    """One ``[section]`` of a darknet cfg.

    Attributes:
        type: the section name, lower case, e.g. ``"convolutional"`` (aliases such as ``[conv]`` are normalised).
        options: ``key -> value`` strings in file order, values stripped, e.g. ``{"filters": "32", "size": "3"}``.
        line: 1-based line number of the ``[section]`` header in the file.
        key_lines: 1-based line number of each key, for error messages.
    """

    type: str
    options: dict = dataclasses.field(default_factory=dict)
    line: int = 0
    key_lines: dict = dataclasses.field(default_factory=dict)

    def get_int(self, key, default=None, *, source="<cfg>") -> int:
        """``options[key]`` as an int (``default`` when absent); ConfigError naming the line if it is not one."""
        return self._get(key, default, int, "an integer", source)

    def get_float(self, key, default=None, *, source="<cfg>") -> float:
        """``options[key]`` as a float (``default`` when absent); ConfigError naming the line if it is not one."""
        return self._get(key, default, float, "a number", source)

    def get_ints(self, key, *, source="<cfg>") -> list[int]:
        """``options[key]`` as a comma-separated list of ints (``"-1, 61"`` -> ``[-1, 61]``)."""
        return self._get(key, None, lambda value: _list_of(int, value), "comma-separated integers", source)

    def get_floats(self, key, *, source="<cfg>") -> list[float]:
        """``options[key]`` as a comma-separated list of floats."""
        return self._get(key, None, lambda value: _list_of(float, value), "comma-separated numbers", source)

    def _get(self, key, default, convert, expected, source):
        """``convert(options[key])`` (``convert(default)`` when absent); ConfigError naming the section and line
        when the key is missing without a default or its value does not convert (``expected`` says what would)."""
        value = self.options.get(key)
        if value is None:
            if default is None:
                raise ConfigError(f"{source}: [{self.type}] at line {self.line}: missing required key {key!r}")
            return convert(default)
        try:
            return convert(value)
        except ValueError:
            raise ConfigError(f"{source}: line {self.key_lines.get(key, self.line)}: [{self.type}] {key}={value!r}: "
                              f"expected {expected}") from None


def _list_of(convert, text):
    return [convert(item) for item in text.split(",") if item.strip()]


def read_cfg_text(text_or_path) -> tuple[str, str]:
    """Return ``(text, source_name)`` for a cfg given as a path or as its text.

    A ``pathlib.Path``, or a string without a newline that names an existing file or ends with ``.cfg``, is read
    as a file (``FileNotFoundError`` naming it when missing); any other string is the cfg text itself.
    """
    if isinstance(text_or_path, Path) or (isinstance(text_or_path, str) and "\n" not in text_or_path
                                          and ("[" not in text_or_path or _is_file(text_or_path))):
        path = Path(text_or_path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: darknet cfg file not found")
        try:
            return path.read_text(encoding="utf-8", errors="replace"), str(path)
        except OSError as error:
            raise ConfigError(f"{path}: cannot read the cfg file ({error.strerror or error})") from error
    if not isinstance(text_or_path, str):
        raise TypeError(f"expected a cfg path or cfg text, got {type(text_or_path).__name__}")
    return text_or_path, "<cfg text>"


def _is_file(name):
    try:
        return Path(name).is_file()
    except OSError:  # e.g. a name too long for the file system: cfg text, not a path
        return False


def parse_cfg(text_or_path, *, source=None) -> list[Section]:
    """Parse a darknet cfg (a path or the text itself) into its sections, in file order.

    Only the syntax is checked here (``[section]`` headers, ``key=value`` lines, no key before the first section,
    no key given twice in one section); :func:`check_supported` checks the content. Errors are
    :class:`ConfigError` naming the file (or ``source``, a name for cfg text) and line.
    """
    text, default_source = read_cfg_text(text_or_path)
    source = source or default_source
    sections: list[Section] = []
    for line_number, raw_line in enumerate(text.splitlines(), start=1):
        line = raw_line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            if not line.endswith("]") or len(line) < 3:
                raise ConfigError(f"{source}: line {line_number}: malformed section header {raw_line.strip()!r} "
                                  f"(expected e.g. '[convolutional]')")
            name = line[1:-1].strip().lower()
            sections.append(Section(type=SECTION_ALIASES.get(name, name), line=line_number))
            continue
        if "=" not in line:
            raise ConfigError(f"{source}: line {line_number}: expected 'key=value' or '[section]', "
                              f"found {raw_line.strip()!r}")
        if not sections:
            raise ConfigError(f"{source}: line {line_number}: key {line!r} before the first [section] header")
        key, value = (part.strip() for part in line.split("=", 1))
        # Darknet allows comments at the end of a value line.
        value = value.split("#", 1)[0].strip()
        section = sections[-1]
        if not key:
            raise ConfigError(f"{source}: line {line_number}: empty key in {raw_line.strip()!r}")
        if key in section.options:
            raise ConfigError(f"{source}: line {line_number}: key {key!r} given twice in [{section.type}] "
                              f"(first at line {section.key_lines[key]})")
        section.options[key] = value
        section.key_lines[key] = line_number
    if not sections:
        raise ConfigError(f"{source}: no [section] found: not a darknet cfg")
    return sections


def format_cfg(sections) -> str:
    """Darknet cfg text for ``sections`` (the inverse of :func:`parse_cfg`, without comments)."""
    blocks = []
    for section in sections:
        lines = [f"[{section.type}]"] + [f"{key}={value}" for key, value in section.options.items()]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def check_supported(sections, *, source="<cfg>") -> None:
    """Raise :class:`ConfigError` (naming the section and line) for anything defi1 cannot build.

    The first section must be ``[net]``; its keys are read (``width``, ``height``, ``channels``) or are darknet
    training settings, accepted and ignored. Each other section must be one of :data:`LAYER_KEYS` with only the keys
    listed there, and values that the Keras port implements (no grouped or dilated convolutions, activations in
    :data:`SUPPORTED_ACTIVATIONS`, linear shortcuts).
    """
    if not sections or sections[0].type != "net":
        first = sections[0] if sections else None
        where = f"[{first.type}] at line {first.line}" if first else "nothing"
        raise ConfigError(f"{source}: the first section must be [net], found {where}")
    for section in sections[1:]:
        if section.type == "net":
            raise ConfigError(f"{source}: line {section.line}: a second [net] section (only the first may be [net])")
    net = sections[0]
    for key in net.options:
        if key not in NET_KEYS_READ and key not in NET_KEYS_IGNORED:
            raise ConfigError(f"{source}: line {net.key_lines[key]}: unsupported key {key!r} in [net] at line "
                              f"{net.line}")
    if net.get_int("channels", 3, source=source) != 3:
        raise ConfigError(f"{source}: line {net.key_lines['channels']}: [net] channels="
                          f"{net.options['channels']}: defi1 models take RGB input (channels=3)")
    for index, section in enumerate(sections[1:]):
        allowed = LAYER_KEYS.get(section.type)
        if allowed is None:
            raise ConfigError(f"{source}: line {section.line}: unsupported section [{section.type}] (layer {index}); "
                              f"supported: {', '.join(sorted(LAYER_KEYS))}")
        for key in section.options:
            if key not in allowed:
                raise ConfigError(f"{source}: line {section.key_lines[key]}: unsupported key {key!r} in "
                                  f"[{section.type}] at line {section.line} (layer {index}); supported: "
                                  f"{', '.join(sorted(allowed))}")
        if section.type == "convolutional":
            activation = section.options.get("activation", "logistic")
            if activation not in SUPPORTED_ACTIVATIONS:
                raise ConfigError(f"{source}: line {section.key_lines.get('activation', section.line)}: activation "
                                  f"{activation!r} in [convolutional] at line {section.line} is not supported "
                                  f"(supported: {', '.join(SUPPORTED_ACTIVATIONS)})")
            for key in ("groups", "dilation"):
                if section.get_int(key, 1, source=source) != 1:
                    raise ConfigError(f"{source}: line {section.key_lines[key]}: {key}={section.options[key]} in "
                                      f"[convolutional] at line {section.line} is not supported (only {key}=1)")
        if section.type == "shortcut" and section.options.get("activation", "linear") != "linear":
            raise ConfigError(f"{source}: line {section.key_lines['activation']}: [shortcut] at line {section.line}: "
                              f"only activation=linear is supported")
