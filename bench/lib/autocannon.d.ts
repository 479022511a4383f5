// The parts of autocannon 9.0.0 (which ships no types) that bench/lib/load-runner.ts uses.
declare module 'autocannon' {
  import type { EventEmitter } from 'node:events';

  namespace autocannon {
    interface Request {
      method?: string;
      path?: string;
      headers?: Record<string, string>;
      body?: string;
    }

    interface RequestStep extends Request {
      /** Called before every request made from this step; returns the request to send. */
      setupRequest?: (request: Request, context: Record<string, unknown>) => Request;
    }

    interface Options {
      url: string;
      connections?: number;
      /** Seconds. */
      duration?: number;
      /** Milliseconds between samples; the run can only stop on a sample. */
      sampleInt?: number;
      pipelining?: number;
      /** Seconds before a request counts as timed out. */
      timeout?: number;
      method?: string;
      headers?: Record<string, string>;
      body?: string;
      requests?: RequestStep[];
      /** Called once for each connection's client, e.g. to listen to its `headers` event. */
      setupClient?: (client: Client) => void;
    }

    /** One connection. `headers` fires per response with http-parser-js's info object. */
    interface Client extends EventEmitter {
      on(event: 'headers', listener: (info: { statusCode: number; headers: string[] }) => void): this;
    }

    interface Result {
      /** Connection errors and timeouts. */
      errors: number;
      timeouts: number;
      /** Seconds. */
      duration: number;
    }

    interface Instance extends EventEmitter {
      on(event: 'response', listener: (client: unknown, statusCode: number, bytes: number, responseTimeMs: number) => void): this;
    }
  }

  function autocannon(options: autocannon.Options, callback: (error: Error | null, result: autocannon.Result) => void): autocannon.Instance;

  export = autocannon;
}
