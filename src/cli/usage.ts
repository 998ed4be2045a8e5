// The help texts of `beuss`, one per verb plus the overview.

/** Usage line and description of each verb, by upper-case name. */
export const VERBS: Record<string, { usage: string; about: string; options?: string[] }> = {
  PUT: {
    usage: 'beuss PUT <queue> [file]',
    about: 'Add one message: the whole of stdin (or of file), byte for byte.\nWarns on stderr when the server stored fewer bytes than sent (truncated).',
    options: [
      '--lines          send each line of stdin as its own message, as lines arrive',
      '--delay <time>   keep the message invisible this long: 250ms, 30s, 5m, 1h, 1h30m',
      '--at <time>      keep it invisible until then: ISO-8601 with a zone, e.g.',
      '                 2026-12-01T08:00:00Z',
    ],
  },
  GET: {
    usage: 'beuss GET <queue> [file]',
    about: 'Take one message and write it to stdout (no newline added) or to file.\nExit code 1 when the queue is empty.',
    options: [
      '--wait <seconds>  wait up to this long on the server for a message (decimals allowed)',
      '--ack             take the message under a lease and acknowledge it only once it was',
      '                  written (file closed, stdout accepted); a failed write gives it back',
      '--lease <seconds> with --ack: how long the message is ours (default 30)',
      '--max-deliver <n> with --ack: deliveries before it moves to <queue>.dead (server default 5)',
    ],
  },
  ON: {
    usage: 'beuss ON <queue>',
    about: 'Print each message pushed by the server as it arrives, followed by a newline.\nCtrl-C stops cleanly: messages already received are printed first.',
    options: [
      '--count <n>       exit after n messages (takes no more than n from the queue)',
      '-0, --null        end each message with a NUL byte instead of a newline',
      '--prefetch <n>    messages the server may push ahead of the output (default 16)',
      "--exec '<cmd>'    run cmd (with sh -c) once per message, the message on its stdin and",
      '                  BEUSS_QUEUE, BEUSS_ID, BEUSS_DELIVERIES set; exit 0 acknowledges it,',
      '                  anything else gives it back (NACK) for another try. One at a time.',
      '--ack             print each message and acknowledge it once written',
      '--lease <seconds> with --exec/--ack: how long a message is ours (default 30); one',
      '                  not settled in time (or held when beuss dies) goes back to the queue',
      '--max-deliver <n> with --exec/--ack: tries before a message moves to <queue>.dead',
    ],
  },
  PEEK: { usage: 'beuss PEEK <queue> [file]', about: 'Show the message at the head of the queue without taking it.\nExit code 1 when the queue is empty.' },
  LEN: { usage: 'beuss LEN <queue>', about: 'Print the number of messages ready in the queue.' },
  PURGE: { usage: 'beuss PURGE <queue>', about: 'Delete every message of the queue; print how many were deleted.' },
  QUEUES: {
    usage: 'beuss QUEUES',
    about: 'List the queues: name, ready messages, consumers, leased, scheduled and dead-lettered messages.',
    options: ['--json           print JSON'],
  },
  STATS: {
    usage: 'beuss STATS [queue]',
    about: "Print the server's counters, or one queue's: ready, consumers, leased, scheduled, dead.",
    options: ['--json           print JSON'],
  },
  PING: { usage: 'beuss PING', about: 'Check that the server answers; print the round-trip time.' },
  MOVE: {
    usage: 'beuss MOVE <from> <to>',
    about:
      'Move the messages of one queue to the end of another, in order; print how many.\n' +
      'Each is taken under a lease and acknowledged only once put: nothing is lost if\n' +
      'MOVE is interrupted. Puts dead letters back: beuss MOVE jobs.dead jobs',
    options: ['--count <n>       move at most n messages'],
  },
  PUB: {
    usage: 'beuss PUB <channel> [file]',
    about: 'Publish one message (stdin, or file) to every current subscriber of the channel.\nNothing is kept when nobody listens.',
    options: ['--lines          publish each line of stdin as its own message, as lines arrive'],
  },
  SUB: {
    usage: 'beuss SUB <channel>',
    about:
      'Print each message published to the channel from now on, followed by a newline.\n' +
      'Messages dropped because this subscriber did not keep up are reported on stderr.\nCtrl-C stops cleanly.',
    options: ['--count <n>       exit after n messages', '-0, --null        end each message with a NUL byte instead of a newline'],
  },
  SCHEDULE: {
    usage: 'beuss SCHEDULE add|ls|rm',
    about:
      'Recurring messages: put a message on a queue at every tick of a cron spec.\n' +
      '  beuss SCHEDULE add <name> <queue> "<spec>" [file]   put file (or stdin) on queue at every tick\n' +
      '  beuss SCHEDULE ls                                  list the schedules\n' +
      '  beuss SCHEDULE rm <name>                           remove one\n' +
      'A spec is a cron expression of 5 fields (minute hour day month weekday) or 6\n' +
      '(seconds first), a shortcut (@hourly, @daily, @weekly, @monthly, @yearly) or\n' +
      '"@every <duration>" (30s, 5m, 1h30m); UTC unless it starts with TZ=<zone>,\n' +
      'e.g. "TZ=Europe/Paris 0 8 * * 1-5". A new schedule with an existing name replaces it.',
    options: ['--json           SCHEDULE ls prints JSON'],
  },
};

const COMMON = `Options for every command:
  --host <host>     server host (default: $BHOST, then localhost)
  --port <port>     server port (default: $BPORT, then 6552)
  -h, --help        show help
  -V, --version     show the version`;

const EXIT_CODES = `Exit codes:
  0  done
  1  queue empty, or --wait timed out
  2  usage error (bad command, option or queue name)
  3  cannot reach the server, or the connection was lost
  4  refused by the server (its error code and text are on stderr)
  5  other failure (local file error, protocol violation)`;

/** Returns the overview help text. */
export function usage(): string {
  const lines = ['Usage: beuss <command> [arguments] [options]', '', 'Commands (case-insensitive):'];
  for (const v of Object.values(VERBS)) lines.push(`  ${v.usage.padEnd(28)} ${v.about.split('\n')[0]}`);
  lines.push(
    '',
    'Examples:',
    '  echo "my-message-content" | beuss PUT jobs',
    '  beuss GET jobs out.bin',
    '  beuss ON jobs',
    '  tail -f app.log | beuss PUT logs --lines',
    '  echo reminder | beuss PUT jobs --delay 30s',
    '  beuss SUB news            # and elsewhere: echo hi | beuss PUB news',
    '  echo tick | beuss SCHEDULE add nightly jobs "0 3 * * *"',
    "  while beuss GET jobs > job.bin; do ./work job.bin; done",
    "  beuss ON jobs --exec './work'       # a worker: retried on failure, nothing lost",
    '',
    COMMON,
    '',
    EXIT_CODES,
    '',
    "Run 'beuss <command> --help' for a command's options.",
  );
  return lines.join('\n') + '\n';
}

/** Returns the help text of one verb. */
export function verbUsage(verb: string): string {
  const v = VERBS[verb];
  const lines = [`Usage: ${v.usage} [options]`, '', v.about];
  if (v.options) lines.push('', 'Options:', ...v.options.map((o) => '  ' + o));
  lines.push('', COMMON, '', EXIT_CODES);
  return lines.join('\n') + '\n';
}
