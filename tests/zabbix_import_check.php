<?php declare(strict_types = 1);
/*
 * Check a Zabbix export file with the Zabbix frontend's own import code, without a database.
 *
 * Usage: php zabbix_import_check.php <Zabbix frontend directory> <export file>
 *
 * Runs the steps of the API's configuration.import (CConfiguration::import) that need no
 * database: the format's reader, the strict import validator of the file's version, the
 * constant, default and normalising converters and the data adapter. Then checks what the
 * API checks when it creates the objects: item keys (CItemKey) and trigger expressions
 * (API_TRIGGER_EXPRESSION, LLD macros allowed in prototypes). The database-bound checks
 * (the items a trigger names exist, uniqueness) are left to the Python tests. Prints a JSON summary (item and trigger counts) and exits 0, or
 * prints the first error on stderr and exits 1.
 */

[, $ui, $file] = $argv;

require $ui.'/include/defines.inc.php';
require $ui.'/include/gettextwrapper.inc.php';
require $ui.'/include/classes/core/CAutoloader.php';
require $ui.'/vendor/autoload.php';

$class_dirs = [];
$tree = new RecursiveIteratorIterator(
	new RecursiveDirectoryIterator($ui.'/include/classes', FilesystemIterator::SKIP_DOTS),
	RecursiveIteratorIterator::SELF_FIRST
);
foreach ($tree as $path => $info) {
	if ($info->isDir()) {
		$class_dirs[] = $path;
	}
}
$autoloader = new CAutoloader();
$autoloader->addNamespace('', $class_dirs);
$autoloader->register();

function check_key(string $key, string $where): void {
	$parser = new CItemKey();
	if ($parser->parse($key) != CParser::PARSE_SUCCESS) {
		throw new Exception($where.': invalid key "'.$key.'": '.$parser->getError());
	}
}

function check_items(array $items, string $where): int {
	foreach ($items as $item) {
		check_key($item['key_'], $where);
	}
	return count($items);
}

function check_triggers(array $triggers, bool $prototypes): int {
	$rule = ['type' => API_TRIGGER_EXPRESSION, 'flags' => API_NOT_EMPTY | ($prototypes ? API_ALLOW_LLD_MACRO : 0)];
	foreach ($triggers as $trigger) {
		$expression = $trigger['expression'];
		if (!CApiInputValidator::validate($rule, $expression, '/expression', $error)) {
			throw new Exception('trigger "'.$trigger['description'].'": '.$error);
		}
	}
	return count($triggers);
}

try {
	$format = CImportReaderFactory::fileExt2ImportFormat(pathinfo($file, PATHINFO_EXTENSION));
	$data = CImportReaderFactory::getReader($format)->read(file_get_contents($file));
	$validators = new CImportValidatorFactory($format);
	$data = (new CXmlValidator($validators, $format))->setStrict(true)->validate($data, '/');
	$schema = $validators->getObject(ZABBIX_EXPORT_VERSION)->getSchema();
	$data = (new CConstantImportConverter($schema))->convert($data);
	$data = (new CDefaultImportConverter($schema))->convert($data);
	$data = (new CImportDataNormalizer($schema))->normalize($data);
	$adapter = new CImportDataAdapter();
	$adapter->load($data);

	$summary = ['version' => $data['zabbix_export']['version'], 'templates' => [], 'items' => 0,
		'discovery_rules' => 0, 'item_prototypes' => 0, 'trigger_prototypes' => 0];
	foreach ($adapter->getTemplates() as $template) {
		$summary['templates'][] = $template['host'];
	}
	foreach ($adapter->getItems() as $items) {
		$summary['items'] += check_items($items, 'item');
	}
	foreach ($adapter->getDiscoveryRules() as $rules) {
		foreach ($rules as $rule) {
			check_key($rule['key_'], 'discovery rule');
			$summary['discovery_rules']++;
			$summary['item_prototypes'] += check_items($rule['item_prototypes'], 'item prototype');
			$summary['trigger_prototypes'] += check_triggers($rule['trigger_prototypes'], true);
		}
	}
	$summary['triggers'] = check_triggers($adapter->getTriggers(), false);
	echo json_encode($summary), "\n";
}
catch (Exception $e) {
	fwrite(STDERR, $e->getMessage()."\n");
	exit(1);
}
