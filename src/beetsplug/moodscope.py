"""moodscope for beets: the mood of each track as flexible attributes and tags.

Enable it with ``plugins: moodscope`` in the beets configuration (after
``pip install 'moodscope[beets]'``). ``beet moodscope [QUERY]`` analyses the matching items and
stores

- ``mood`` (``happy``, ``tense``, ``sad`` or ``calm``), ``mood_quadrant`` (``Q1``..``Q4``),
- ``valence``, ``arousal`` and ``mood_confidence`` (numbers: ``beet ls valence:0.6..`` works),
- ``mood_model`` (the model's name and content hash),

so that ``beet ls mood:calm`` finds the calm tracks. The same values are written into the files,
under the tag names ``moodscope library tag`` uses (``MOOD``, ``MOODSCOPE_*``), whenever beets
writes tags (``-w``/``-W``, the ``import.write`` option, ``beet write``), and read back from files
that have them (``beet update``, imports of files tagged by moodscope). With ``auto`` and
``import.write`` on, imported files are tagged after beets has copied or moved them, also on as-is
imports (where beets writes no tags of its own).

Files are analysed through moodscope's mood library: a file it has already analysed (same file
unchanged, or the same audio with other tags, moved or copied) is not analysed again, and new
analyses are stored there for the next time. Configuration (defaults)::

    moodscope:
        auto: yes         # analyse on import
        library:          # moodscope's library database (default: moodscope's own default)
        model:            # 'accurate' (default), 'fast' or a checkpoint path
        workers:          # parallel analysis processes (default: all cores)
"""

from __future__ import annotations

import os
from typing import ClassVar

import mediafile
from beets import ui
from beets.dbcore import types
from beets.plugins import BeetsPlugin

from moodscope.library.tags import MOOD_TAGS, mood_tag_values

FIELDS = dict(
    zip(("mood", "mood_quadrant", "valence", "arousal", "mood_confidence", "mood_model"), MOOD_TAGS, strict=True)
)
"""beets field -> the tag it is written to (moodscope's tag names)."""

NUMBERS = ("valence", "arousal", "mood_confidence")
FLOAT_PLACES = 4


def media_field(tag: str, *, number: bool) -> mediafile.MediaField:
    """A MediaField for one of moodscope's tags, in every container beets writes."""
    kw = {"float_places": FLOAT_PLACES} if number else {}
    return mediafile.MediaField(
        mediafile.MP3DescStorageStyle(tag, **kw),
        mediafile.MP4StorageStyle(f"----:com.apple.iTunes:{tag}", **kw),
        mediafile.StorageStyle(tag, **kw),
        mediafile.ASFStorageStyle(f"moodscope/{tag}", **kw),
        out_type=float if number else str,
    )


class MoodscopePlugin(BeetsPlugin):
    item_types: ClassVar[dict] = {
        name: types.NullFloat(FLOAT_PLACES) for name in NUMBERS
    }  # numeric queries: valence:0.6..

    def __init__(self) -> None:
        super().__init__()
        self.config.add({"auto": True, "library": None, "model": None, "workers": None})
        for field, tag in FIELDS.items():
            self.add_media_field(field, media_field(tag, number=field in NUMBERS))
        if self.config["auto"].get(bool):
            self.import_stages = [self.imported]
            self.register_listener("import_task_files", self.write_imported)

    def commands(self) -> list[ui.Subcommand]:
        cmd = ui.Subcommand("moodscope", help="analyse the mood of tracks with moodscope")
        cmd.parser.add_option("-f", "--force", action="store_true", help="analyse again, even tracks analysed before")
        cmd.parser.add_option("-w", "--write", action="store_true", dest="write", default=None, help="write tags")
        cmd.parser.add_option("-W", "--nowrite", action="store_false", dest="write", help="do not write tags")
        cmd.func = self.command
        return [cmd]

    def command(self, lib, opts, args) -> None:
        items = list(lib.items(args))
        analysed, reused, failed = self.analyse(items, write=ui.should_write(opts.write), force=bool(opts.force))
        ui.print_(
            f"moodscope: {len(items)} tracks: {analysed} analysed, {reused} from the moodscope library, {failed} failed"
        )

    def imported(self, session, task) -> None:
        """Import stage: analyse the new items and store their mood (tags are written later, by
        :meth:`write_imported`, once the files are where they go)."""
        self.analyse(task.imported_items(), write=False)

    def write_imported(self, session, task) -> None:
        """After an import has copied or moved the files: with ``import.write`` on, write the mood
        tags into the files of the items analysed on import. Beets writes tags itself only for items
        whose metadata it changed (an applied match, a retag), not for an as-is import."""
        from beets.importer import Action

        if not ui.should_write() or task.apply or task.choice_flag == Action.RETAG:
            return
        for item in task.imported_items():
            if "mood" in item:
                item.try_write()

    def analyse(self, items, *, write: bool, force: bool = False) -> tuple[int, int, int]:
        """Analyse ``items`` (through moodscope's library) and store their mood; (analysed, reused, failed)."""
        from moodscope.library import MoodLibrary

        if not items:
            return 0, 0, 0
        paths = [os.fsdecode(item.path) for item in items]
        workers = self.config["workers"].get()
        with MoodLibrary(self.config["library"].as_str() if self.config["library"].get() else None) as library:
            result, tracks = library.index_files(
                paths, model=self.config["model"].get(), workers=int(workers) if workers else None, force=force
            )
        failed = result.failed | result.skipped_failed
        for item, path in zip(items, paths, strict=True):
            track = tracks.get(os.path.abspath(path))
            if track is None:
                self._log.warning("{}: not analysed: {}", path, failed.get(os.path.abspath(path), "unknown reason"))
                continue
            values = mood_tag_values(track)
            item.update(
                {
                    "mood": values["MOOD"],
                    "mood_quadrant": track.quadrant,
                    "valence": round(track.valence, FLOAT_PLACES),
                    "arousal": round(track.arousal, FLOAT_PLACES),
                    "mood_confidence": round(track.confidence, FLOAT_PLACES),
                    "mood_model": values["MOODSCOPE_MODEL"],
                }
            )
            self._log.info("{}: {} ({}), valence {:.2f}, arousal {:.2f}", path, values["MOOD"], track.quadrant,
                           track.valence, track.arousal)  # fmt: skip
            if write:
                item.try_write()
            item.store()
        return len(result.analysed), len(paths) - len(result.analysed) - len(failed), len(failed)
