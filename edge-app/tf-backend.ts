/**
 * Pick the fastest TensorFlow.js backend available: the native bindings
 * (@tensorflow/tfjs-node-gpu, then @tensorflow/tfjs-node) when installed,
 * otherwise the pure-JavaScript cpu backend. Never wasm: its
 * Conv3DBackpropInputV2 and MaxPool3DGrad give wrong results.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import type { Log } from '../sdk/index.js';

/** Only `info` is used: which backend was chosen, or why a native one failed to load. */
export type BackendLogger = Pick<Log, 'info'>;

const NATIVE = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'] as const;

let selected: Promise<string> | undefined;

/** Select (once per process) and return the backend name: 'tensorflow' or 'cpu'. */
export function selectBackend(logger?: BackendLogger): Promise<string> {
  selected ??= pick(logger);
  return selected;
}

async function pick(logger?: BackendLogger): Promise<string> {
  tf.enableProdMode(); // no per-op NaN checks, no "install tfjs-node" banner
  for (const name of NATIVE) {
    try {
      const specifier: string = name; // a variable: the packages are optional and have no types here
      await import(specifier);
      if (await tf.setBackend('tensorflow')) {
        await tf.ready();
        logger?.info(`TensorFlow.js backend: tensorflow (${name})`);
        return tf.getBackend();
      }
    } catch (e) {
      // Not installed (the usual case) or its native library failed to load: try the next one.
      const code = (e as { code?: unknown }).code;
      if (code !== 'ERR_MODULE_NOT_FOUND') logger?.info(`${name} is installed but failed to load: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  if (!(await tf.setBackend('cpu'))) throw new Error('TensorFlow.js cpu backend failed to initialise');
  await tf.ready();
  logger?.info('TensorFlow.js backend: cpu (pure JavaScript; install @tensorflow/tfjs-node for speed)');
  return tf.getBackend();
}
