// Entry of one crew thread started by runCrewThreads (crew-threads.ts): runs runCrew with the
// options it was given and reports events, the summary or the failure to the parent. Wiring only.
import { parentPort, workerData } from 'node:worker_threads';
import { runCrew } from './crew.js';
import type { CrewThreadData, CrewThreadMessage } from './crew-threads.js';

function start(port: NonNullable<typeof parentPort>, data: CrewThreadData): void {
  const post = (m: CrewThreadMessage): void => port.postMessage(m);
  const stop = new AbortController();
  port.on('message', (m: { type?: string }) => {
    if (m.type === 'stop') stop.abort();
  });
  runCrew({ ...data.options, signal: stop.signal, ...(data.forwardEvents ? { onProgress: (event) => post({ type: 'event', event }) } : {}) }).then(
    (summary) => {
      post({ type: 'done', summary });
      port.close();
    },
    (e: unknown) => {
      const coded = typeof (e as { code?: unknown }).code === 'string';
      const code = coded ? (e as { code: string }).code : 'crew-thread-failed';
      // An uncoded error is a bug: its stack goes with it, as it would on the main thread.
      const message = e instanceof Error ? (coded ? e.message : (e.stack ?? e.message)) : String(e);
      post({ type: 'error', code, message });
      port.close();
    },
  );
}

if (parentPort) start(parentPort, workerData as CrewThreadData);
