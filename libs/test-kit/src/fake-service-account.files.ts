import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/**
 * Service-account files that pass the server's config check (the three fields it reads). Their key is never used:
 * the tests give the SDK a static access token through the FcmAppFactory seam.
 */
export function fakeServiceAccountFiles(projects: string[]): { files: Record<string, string>; remove: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mpr-fake-firebase-'));
  const files: Record<string, string> = {};
  for (const project of projects) {
    const file = path.join(dir, `${project}.json`);
    fs.writeFileSync(
      file,
      JSON.stringify({
        type: 'service_account',
        project_id: project,
        client_email: `push@${project}.iam.gserviceaccount.com`,
        private_key: 'unused',
      }),
    );
    files[project] = file;
  }
  return { files, remove: () => fs.rmSync(dir, { recursive: true, force: true }) };
}
