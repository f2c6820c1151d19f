"""`python -m servers.exports`: serve the export tools under the perimeter's contract."""

from servers.exports.server import runtime

if __name__ == "__main__":
    runtime.serve()
