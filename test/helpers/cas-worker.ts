/** Child process for the CAS test: appends N commits to refs/heads/main, retrying on conflict. */
import { Repository } from '../../operator/git/repository.js';
import { RefConflict, RefLocked } from '../../operator/errors.js';

const [gitdir, name, countText] = process.argv.slice(2) as [string, string, string];
const repo = new Repository(gitdir);
for (let i = 0; i < Number(countText); i++) {
  for (;;) {
    const head = await repo.readRef('refs/heads/main');
    const oid = await repo.writeCommit({ files: { who: Buffer.from(`${name} ${i}`) }, parents: head ? [head] : [], message: `${name} ${i}\n`, author: { name, email: `${name}@x`, timestamp: 1 } });
    try {
      await repo.updateRef('refs/heads/main', oid, head);
      break;
    } catch (e) {
      if (!(e instanceof RefConflict) && !(e instanceof RefLocked)) throw e;
    }
  }
}
