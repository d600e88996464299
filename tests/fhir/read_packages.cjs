// Reads FHIR packages with fhir-package-loader (SUSHI's loader), an implementation independent of fhirsvc.
// Usage: node read_packages.cjs LOADER_DIR CACHE_DIR PACKAGE.tgz...
// Each tarball is unpacked by the loader's own package cache, loaded by name and version with the registry and
// the build server refused (offline: nothing is downloaded, no dependency is fetched), then every resource the
// loader indexed is read back. Prints one JSON document: per package its name, version, load status, the
// package.json and .index.json as the loader cached them, and every resource read back.
'use strict';
const fs = require('fs');
const path = require('path');
const zlib = require('zlib');

const [loaderDir, cacheDir, ...tarballs] = process.argv.slice(2);
const fpl = require(path.resolve(loaderDir, 'node_modules', 'fhir-package-loader'));

const offline = {
  resolveVersion: async (name, version) => version,
  download: async (name, version) => { throw new Error(`offline: ${name}#${version} is not downloaded`); },
  downloadCurrentBuild: async (name) => { throw new Error(`offline: no current build of ${name}`); },
  getCurrentBuildDate: async (name) => { throw new Error(`offline: no current build of ${name}`); },
};

function manifestOf(tarball) {
  // package/package.json read from the tarball (a plain ustar/pax walk) to learn the name and version.
  const data = zlib.gunzipSync(fs.readFileSync(tarball));
  for (let offset = 0; offset + 512 <= data.length;) {
    const name = data.toString('utf8', offset, offset + 100).replace(/\0.*$/s, '');
    const size = parseInt(data.toString('utf8', offset + 124, offset + 136).replace(/\0.*$/s, '').trim() || '0', 8);
    if (!name) break;
    if (name === 'package/package.json') return JSON.parse(data.toString('utf8', offset + 512, offset + 512 + size));
    offset += 512 + Math.ceil(size / 512) * 512;
  }
  throw new Error(`${tarball}: no package/package.json`);
}

async function main() {
  const logs = [];
  const log = (level, message) => logs.push(`${level}: ${message}`);
  const cache = new fpl.DiskBasedPackageCache(cacheDir, { log });
  const loader = new fpl.BasePackageLoader(await fpl.createSQLJSPackageDB(), cache, offline, offline, { log });
  const packages = [];
  for (const tarball of tarballs) {
    const { name, version } = manifestOf(tarball);
    await cache.cachePackageTarball(name, version, fs.createReadStream(tarball));
    const status = await loader.loadPackage(name, version);
    const folder = path.join(cache.getPackagePath(name, version), 'package');
    const resources = loader.findResourceInfos('*', { scope: `${name}|${version}` }).map((info) => {
      const json = loader.findResourceJSON(info.id, { type: [info.resourceType], scope: `${name}|${version}` });
      return { resourceType: info.resourceType, id: info.id, url: info.url, version: info.version, json };
    });
    packages.push({
      name, version, status,
      packageJson: loader.findPackageJSON(name, version),
      index: JSON.parse(fs.readFileSync(path.join(folder, '.index.json'), 'utf8')),
      resources,
    });
  }
  process.stdout.write(JSON.stringify({ packages, logs }));
}

main().catch((error) => { console.error(error && error.stack || String(error)); process.exit(1); });
