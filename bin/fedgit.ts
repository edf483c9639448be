#!/usr/bin/env node
/**
 * The `fedgit` command: the composition root. It is the one module that knows
 * every part — the operator's CLI, the app and strategy registries, and the
 * experiment commands that sit above them — and wires them together. Nothing
 * below it finds another module by a string path.
 *
 * The experiment is imported only when one of its commands runs (a literal
 * path the compiler checks), so that a participant process does not load
 * TensorFlow.js and the cohort generator it never uses.
 */
import { fileURLToPath } from 'node:url';
import { runCli, type CliDeps, type ExtraCommand } from '../operator/cli.js';
import { builtinRegistries } from './registries.js';

const cli = fileURLToPath(import.meta.url);

const experimentCommand = (name: 'experiment' | 'synth' | 'evaluate', usage: string): ExtraCommand => ({
  name,
  usage,
  async run(args) {
    const { runExperimentCommand } = await import('../experiment/cli.js');
    return runExperimentCommand(name, args, { registries: builtinRegistries, cli });
  },
});

const deps: CliDeps = {
  registries: builtinRegistries,
  cli,
  commands: [
    experimentCommand('experiment', '  experiment              the default job: synthetic cohort, central vs federated ASPECTS training\n'),
    experimentCommand('synth', '  synth                   write a synthetic NCCT cohort (see fedgit synth --help)\n'),
    experimentCommand('evaluate', "  evaluate --weights W --data DIR   the experiment's report for any weights on a labelled folder (see fedgit evaluate --help)\n"),
  ],
};

process.exit(await runCli(process.argv.slice(2), deps));
