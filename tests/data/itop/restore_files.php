<?php
/**
 * The file side of iTop 3.2's restore, on a real archive: ITopArchiveTar over the PEAR
 * Archive_Tar 1.4.14 that iTop bundles (Archive_Tar-1.4.14.php, iTop's
 * lib/pear/archive_tar/Archive/Tar.php unchanged, New BSD License), then the steps of
 * DBRestore::RestoreFromCompressedBackup after the extraction, minus the database load and
 * the compile (datamodels/2.x/itop-backup/dbrestore.class.inc.php, support/3.2 at 8bb456df;
 * iTop is Copyright Combodo SAS, AGPL-3.0-or-later).
 *
 * Usage: php restore_files.php ARCHIVE ITOP_ROOT  (prints "extract failed" and exits 1 when
 * Archive_Tar refuses the archive; iTop itself ignores that result and goes on).
 */

class PEAR  // the part of pear-core-minimal that Archive_Tar uses with zlib loaded
{
    public function __construct() {}
}

require __DIR__.'/Archive_Tar-1.4.14.php';

class ITopArchiveTar extends Archive_Tar  // core/tar-itop.class.inc.php, errors to stderr
{
    const READ_BUFFER_SIZE = 1024*1024;

    public function __construct($p_tarname, $p_compress = null)
    {
        parent::__construct($p_tarname, $p_compress, self::READ_BUFFER_SIZE);
    }

    public function _error($p_message)
    {
        fwrite(STDERR, "Archive_Tar error: $p_message\n");
    }

    public function _warning($p_message)
    {
        fwrite(STDERR, "Archive_Tar warning: $p_message\n");
    }
}

function builddir($dir)  // SetupUtils::builddir
{
    if (!empty($dir) && !is_dir($dir)) {
        builddir(dirname($dir));
        mkdir($dir);
    }
}

function rrmdir($dir)  // SetupUtils::rrmdir
{
    foreach (scandir($dir) as $file) {
        if ($file != '.' && $file != '..') {
            is_dir("$dir/$file") ? rrmdir("$dir/$file") : unlink("$dir/$file");
        }
    }
    rmdir($dir);
}

function ListExtraFiles(string $sDataDir, string $sAppRoot)  // DBRestore::ListExtraFiles, as is
{
    $aExtraFiles = [];
    $aStandardFiles = ['config-itop.php', 'itop-dump.sql', 'production-modules', 'delta.xml'];
    $oDirectoryIterator = new RecursiveDirectoryIterator($sDataDir, FilesystemIterator::CURRENT_AS_FILEINFO|FilesystemIterator::SKIP_DOTS);
    $oIterator = new RecursiveIteratorIterator($oDirectoryIterator);
    foreach ($oIterator as $oFileInfo) {
        if (in_array($oFileInfo->getFilename(), $aStandardFiles)) {
            continue;
        }
        $sPath = str_replace('\\', '/', $oFileInfo->getPathname());
        $sRefPath = str_replace('\\', '/', $sDataDir.'/production-modules');
        if (strncmp($sPath, $sRefPath, strlen($sRefPath)) == 0) {
            continue;
        }
        $aExtraFiles[$oFileInfo->getPathname()] = $sAppRoot.substr($oFileInfo->getPathname(), strlen($sDataDir));
    }
    return $aExtraFiles;
}

[$sFile, $sAppRoot] = [$argv[1], rtrim($argv[2], '/').'/'];
$sEnvironment = 'production';
$sDataPath = $sAppRoot.'data/';

$oArchive = new ITopArchiveTar($sFile);  // TarGzArchive
$sDataDir = $sDataPath.'tmp-backup-'.rand(10000, getrandmax());
builddir($sDataDir);
if (!$oArchive->extract($sDataDir)) {  // TarGzArchive::extractTo
    echo "extract failed\n";
    exit(1);
}
// (LoadDatabase($sDataDir.'/itop-dump.sql') here)
$sDeltaFile = $sDataPath.$sEnvironment.'.delta.xml';
if (is_file($sDataDir.'/delta.xml')) {
    rename($sDataDir.'/delta.xml', $sDeltaFile);
} else {
    @unlink($sDeltaFile);
}
if (is_dir($sDataPath.'production-modules/')) {
    rrmdir($sDataPath.'production-modules/');
}
if (is_dir($sDataDir.'/production-modules')) {
    rename($sDataDir.'/production-modules', $sDataPath.'production-modules/');
}
$sConfigFile = $sAppRoot.'conf/'.$sEnvironment.'/config-itop.php';
@chmod($sConfigFile, 0770);
rename($sDataDir.'/config-itop.php', $sConfigFile);
@chmod($sConfigFile, 0440);
foreach (ListExtraFiles($sDataDir, $sAppRoot) as $sSourceFilePath => $sDestinationFilePath) {
    builddir(dirname($sDestinationFilePath));
    rename($sSourceFilePath, $sDestinationFilePath);
    echo 'moved '.ltrim(substr($sDestinationFilePath, strlen($sAppRoot)), '/')."\n";
}
rrmdir($sDataDir);
// (RunTimeEnvironment::CompileFrom here)
