"""The ``canary-sentinel`` command line: run, replay, check-config, demo, broker."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from config.loader import ConfigError, load_config
from config.schema import SentinelConfig


def _config(path: str | None) -> SentinelConfig:
    try:
        return load_config(path)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(2) from None


def _cmd_run(args: argparse.Namespace) -> int:
    cfg = _config(args.config)
    from detector.app import run_worker

    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    sys.argv = [sys.argv[0], "worker"]  # faust's worker parses argv
    run_worker(cfg, loglevel=args.log_level)
    return 0


def _cmd_replay(args: argparse.Namespace) -> int:
    from detector.replay import main_replay

    return main_replay(args.input, args.out, _config(args.config), args.deadletter)


def _cmd_check(args: argparse.Namespace) -> int:
    from detector.explain import describe_fields, explain

    if args.fields:
        describe_fields(sys.stdout)
        return 0
    if args.file is None:
        print("check-config: give a FILE (or --fields)", file=sys.stderr)
        return 2
    explain(_config(args.file), sys.stdout)
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from detector.demo_run import run_demo

    return run_demo(speed=args.speed, keep_broker=False)


def _cmd_broker(args: argparse.Namespace) -> int:
    from detector.localbroker import LocalBroker

    broker = LocalBroker(port=args.port)
    broker.start()
    print(f"Kafka broker ready at {broker.bootstrap} (Ctrl-C stops it)", flush=True)
    try:
        assert broker.proc is not None
        broker.proc.wait()
    except KeyboardInterrupt:
        pass
    finally:
        broker.stop()
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="canary-sentinel",
        description=(
            "Watches canary and baseline metrics and logs from Kafka, decides when a canary has "
            "regressed, alerts, and stops the rollout."
        ),
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the always-on service (a faust worker)")
    run.add_argument("--config", required=True, metavar="FILE", help="configuration YAML")
    run.add_argument("--log-level", default="WARNING", help="logging level (default WARNING)")
    run.set_defaults(func=_cmd_run)

    rep = sub.add_parser(
        "replay",
        help="decide over a file of native records, offline (nothing leaves the process)",
        description=(
            "Runs the same decision core as the service over INPUT (one JSON record a line, in "
            "arrival order) and writes one decision record a line. Exits 0 when the file was "
            "read, whatever it decided."
        ),
    )
    rep.add_argument("input", metavar="INPUT.jsonl")
    rep.add_argument("--config", metavar="FILE", help="configuration YAML (default: defaults)")
    rep.add_argument("--out", required=True, metavar="DECISIONS.jsonl", help="output ('-': stdout)")
    rep.add_argument(
        "--deadletter", metavar="FILE", help="write undecodable lines here, with reasons"
    )
    rep.set_defaults(func=_cmd_replay)

    chk = sub.add_parser("check-config", help="validate a configuration and explain it")
    chk.add_argument("file", nargs="?", metavar="FILE")
    chk.add_argument("--fields", action="store_true", help="list every setting with its meaning")
    chk.set_defaults(func=_cmd_check)

    demo = sub.add_parser(
        "demo",
        help="start a local Kafka broker, the service in dry-run, and a demo with one healthy and "
        "one regressing canary; print decisions as they happen",
    )
    demo.add_argument(
        "--speed", type=float, default=60.0, help="event-time seconds per wall second (default 60)"
    )
    demo.set_defaults(func=_cmd_demo)

    brk = sub.add_parser("broker", help="run a local single-node Kafka broker on 127.0.0.1")
    brk.add_argument("--port", type=int, default=9092)
    brk.set_defaults(func=_cmd_broker)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    rc: int = args.func(args)
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
