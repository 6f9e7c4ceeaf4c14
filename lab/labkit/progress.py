"""Salt's ``--out=json`` output read as it comes: each minion's return the moment it arrives.

Without ``--static`` the salt CLI prints a minion's return as soon as the master has it: one JSON
object ``{minion: return}`` per minion, one after the other, each pretty-printed over many lines
(the master sets no ``output_indent``: four spaces; with ``output_indent: null`` it would be one
line each). A minion that does not answer within ``-t`` still gets its document, its return the
string ``Minion did not return. [No response] ...`` (or ``[Not connected]``).

:class:`ReturnStream` parses that output a line at a time (pure: text in, returns out);
:class:`SaltStream` runs the command and yields each minion's return, and when it came.
"""

import codecs
import json
import os
import re
import selectors
import subprocess
import tempfile
import time

#: A JSON string literal, escapes included: braces inside one are text, not structure.
STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
#: How Salt's CLI begins the return it makes up for a minion that did not answer.
NO_RETURN = "Minion did not return."


def did_not_return(ret):
    """True for the placeholder Salt prints for a minion that never answered."""
    return isinstance(ret, str) and ret.startswith(NO_RETURN)


class ReturnStream:
    """Fed salt's stdout a line at a time, hands back each ``(minion, return)`` as soon as the
    document holding it is complete.

    A document begins on a line that starts with ``{`` and ends on the line where its braces
    balance. Braces are counted outside strings; a JSON string never spans lines (a newline in it
    is ``\\n``), so a line's strings can be cut out on their own. That works for any indentation,
    one line per document included, and never re-parses a large return while it grows. Lines
    between documents (a warning on stdout) are kept in :attr:`noise`; a document still open at
    the end (the command was killed mid-way) is counted in :attr:`unfinished`.
    """

    def __init__(self):
        self._lines = []
        self._depth = 0
        self.noise = []
        self.unfinished = 0

    def feed(self, line):
        """One line of output, with or without its newline: the ``(minion, return)`` pairs of
        the documents it completed, in order (usually none or one)."""
        if not self._lines and not line.lstrip().startswith("{"):
            if line.strip():
                self.noise.append(line.rstrip("\n"))
            return []
        self._lines.append(line)
        structure = STRING.sub("", line)
        self._depth += structure.count("{") - structure.count("}")
        if self._depth > 0:
            return []
        return self._complete()

    def close(self):
        """The end of the output: a document left open is unfinished (no return from it)."""
        if self._lines:
            self.unfinished += 1
            self._lines, self._depth = [], 0

    def _complete(self):
        text = "".join(self._lines)
        self._lines, self._depth = [], 0
        pairs = []
        decoder = json.JSONDecoder()
        at = 0
        # Usually one document; a line may also hold several (``{...}{...}``).
        while at < len(text):
            while at < len(text) and text[at].isspace():
                at += 1
            if at == len(text):
                break
            try:
                document, at = decoder.raw_decode(text, at)
            except ValueError:
                self.noise.append(text[at:].rstrip("\n"))
                break
            if isinstance(document, dict):
                pairs += document.items()
            else:
                self.noise.append(json.dumps(document))
        return pairs


class SaltStream:
    """``argv`` (the salt CLI with ``--out=json``, not ``--static``) run to its end; iterating
    yields ``(minion, return, seconds)`` as each minion's document completes, ``seconds`` since
    the command started.

    The command is killed ``kill_after`` seconds after its start (what came back by then stands).
    Its stdout is read with a deadline, not line by line blocking: ``lxc-attach`` hands its own
    stdout to the command inside, so killing ``lxc-attach`` does not close the pipe, and a
    blocking read would wait for the command inside to finish anyway. After the loop:
    :attr:`killed`, :attr:`returncode`, :attr:`stderr` and the parser's :attr:`noise`.
    """

    def __init__(self, argv, kill_after):
        self.argv = [str(a) for a in argv]
        self.kill_after = kill_after
        self.parser = ReturnStream()
        self.killed = False
        self.returncode = None
        self.stderr = ""

    @property
    def noise(self):
        return self.parser.noise

    def __iter__(self):
        started = time.monotonic()
        deadline = started + self.kill_after
        # stderr to a file, not a pipe: a pipe nobody reads while stdout streams could fill up
        # and stall the command.
        with tempfile.TemporaryFile() as errors:
            proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=errors)
            reading_done = False  # stays so when the caller stops early (an exception)
            try:
                for line in self._lines(proc.stdout, deadline):
                    for minion, ret in self.parser.feed(line):
                        yield minion, ret, time.monotonic() - started
                self.parser.close()
                reading_done = True
            finally:
                proc.stdout.close()
                self.returncode = self._end(proc, deadline if reading_done else 0)
                errors.seek(0)
                self.stderr = errors.read().decode("utf-8", "replace")

    def _end(self, proc, deadline):
        """The command's exit status, once it has exited by ``deadline`` or been killed."""
        try:
            return proc.wait(timeout=max(0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:  # past the deadline, or the caller stopped early
            self.killed = True
            proc.kill()
            return proc.wait()

    @staticmethod
    def _lines(stdout, deadline):
        """The lines of ``stdout`` as they are written, until its end or ``deadline``."""
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        pending = ""
        with selectors.DefaultSelector() as selector:
            selector.register(stdout, selectors.EVENT_READ)
            while (left := deadline - time.monotonic()) > 0:
                if not selector.select(timeout=left):
                    continue
                chunk = os.read(stdout.fileno(), 65536)
                pending += decoder.decode(chunk, final=not chunk)
                *lines, pending = pending.split("\n")
                for line in lines:
                    yield line + "\n"
                if not chunk:
                    break
        if pending:
            yield pending
